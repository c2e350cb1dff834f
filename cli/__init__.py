"""The `leadrouter` command line."""
