"""Pydantic models at the edges: inbound commands, outbound events, settings."""
