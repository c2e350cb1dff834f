"""Settings for a command: a bad value stops the process with one clear line, not a traceback."""

import sys

from pydantic import ValidationError

from schemas.settings import Settings


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        sys.exit(f"leadrouter: invalid settings: {problems}")
