"""What the two wire formats say: paths, errors, usage, SSE, outcomes (pure)."""
