"""Background work on a Redis job queue: what the web tier enqueues and what workers run."""
