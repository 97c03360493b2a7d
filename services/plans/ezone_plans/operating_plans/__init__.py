"""Annual operating plans: versions, lifecycle, board votes and decisions."""
