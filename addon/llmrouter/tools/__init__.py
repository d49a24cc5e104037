"""Command-line tools beside the router: report, demo, fake provider."""
