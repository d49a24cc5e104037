"""The mitmproxy glue: hooks, the attempt loop, upstream I/O, the handoff, the log."""
