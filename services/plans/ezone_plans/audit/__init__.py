"""Who changed what, when, with which trace: by plan and by school."""
