"""Student-level results and enrollments in: JSON batches, streamed CSV, and the bulk upsert they share."""
