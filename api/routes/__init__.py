"""One router per resource, each under `/api/v1` (health and metrics at the root, no token)."""
