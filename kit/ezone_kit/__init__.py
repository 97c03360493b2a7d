"""The shared kit: the one place for the outbox, consumer, envelope, db, auth, errors and telemetry.

Every ezone service is built from these parts in the same way (see `ezone_kit.service`).
"""
