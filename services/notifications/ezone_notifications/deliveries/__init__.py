"""Deliveries: alerts pushed by email and webhook, per the members' preferences, retried until they arrive."""
