"""Persistence: models, engine/session factory, repositories, migrations."""
