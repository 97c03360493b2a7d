"""A member's preferences: push channels per severity, time zone, quiet hours and the daily digest."""
