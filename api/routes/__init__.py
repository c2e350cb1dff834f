"""One router per resource; `api.app` mounts them under `/api/v1` (health, metrics: root)."""
