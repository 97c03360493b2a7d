"""Earned autonomy: tiers derived from review history by the zone policy's rules."""
