"""The plans service of ezone."""
