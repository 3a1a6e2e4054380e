"""Softphone connectors and call events (no widgets)."""
