"""School-level results as states publish them (MCAS school files), for every school in the state."""
