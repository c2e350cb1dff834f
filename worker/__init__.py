"""The leadrouter worker: consume commands, route interactions, publish events."""
