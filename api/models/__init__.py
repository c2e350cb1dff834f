"""Request and response bodies of the HTTP API: the OpenAPI schema is generated from these."""
