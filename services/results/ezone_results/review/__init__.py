"""Accountability reviews: metrics, goal statuses and integrity flags per school, school year and subject."""
