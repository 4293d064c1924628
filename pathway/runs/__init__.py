"""The scheduler's claimed runs (one per run date, taken over when stale) and the retention run's
batched deletes."""
