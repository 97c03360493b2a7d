"""Alert rules, kept as data per zone: which events (and which of their values) alert whom, how urgently."""
