"""`python -m cli` is `leadrouter` (for environments without the console script on PATH)."""

from cli.main import main

main()
