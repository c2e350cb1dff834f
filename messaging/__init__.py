"""AMQP plumbing shared by the worker, the API and the CLI."""
