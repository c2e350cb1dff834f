"""The API's `app` and `client` fixtures (real app, real broker, real databases) for these tests."""

from tests.api.conftest import app, client

__all__ = ["app", "client"]
