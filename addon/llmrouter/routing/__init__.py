"""Routing decisions: which profile, which provider order (pure)."""
