"""Benchmarks of the event platform (outbox relay, idempotent consumers, end-to-end latency) on the
embedded stack. Run `python -m bench [--quick] [--only NAME ...]`; results go to bench/out/<name>.json."""
