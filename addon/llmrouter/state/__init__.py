"""What the router learns: provider health and latency."""
