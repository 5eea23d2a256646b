"""batch-worker: a queue worker that runs small data jobs in batches (Python stdlib only)."""
