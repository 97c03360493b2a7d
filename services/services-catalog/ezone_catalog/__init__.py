"""The catalog service of ezone."""
