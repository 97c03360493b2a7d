"""Zone policy: versioned data, not code — review thresholds, voting rule, tier rules."""
