"""Orders, non-optional assignments and the budget envelopes they draw on."""
