"""The notifications service of ezone."""
