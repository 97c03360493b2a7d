"""Partners' evidence of impact, computed from reviews, and recommendations for schools that need help."""
