"""The zone registry: zones and their schools."""
