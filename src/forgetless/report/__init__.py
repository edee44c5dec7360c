"""Turning results into things people and machines read: tables, Markdown, JSON."""
