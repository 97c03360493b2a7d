"""Partner organisations: onboarding and vetting."""
