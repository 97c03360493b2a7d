"""Board members and school leadership teams."""
