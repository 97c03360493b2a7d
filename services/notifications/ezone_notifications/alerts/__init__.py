"""Alerts: raised from events by the zone's rules, one per recipient and source event; the inbox and its live stream."""
