"""The results service of ezone."""
