"""The board's web page: its projections of reviews and plans, the overview API, sign-in and the page itself."""
