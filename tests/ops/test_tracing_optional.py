"""OpenTelemetry is optional: without it (or without its SDK) every module imports and tracing
stays off. Each case imports the application in a fresh interpreter, so it lives with the
process-level tests, not the unit tests."""

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("absent", "modules"),
    [
        ("opentelemetry", "worker.pipeline, worker.relay, cli.worker_cmd"),
        ("opentelemetry.sdk", "worker.pipeline, worker.relay, cli.worker_cmd, api.app"),
    ],
)
def test_without_the_sdk_everything_imports_and_stays_off(absent: str, modules: str) -> None:
    """The package unimportable (None in sys.modules), as where the `otel` extra is absent
    (FastAPI needs the API package itself, so the API's modules are tried without the SDK)."""
    script = (
        "import sys\n"
        f"sys.modules[{absent!r}] = None\n"
        f"import {modules}\n"
        "from messaging import tracing\n"
        "assert tracing.configure('leadrouter-worker') is False and not tracing.active()\n"
        "with tracing.span('leadrouter.batch') as span:\n"
        "    assert span is None\n"
        "assert 'opentelemetry.sdk.trace' not in sys.modules\n"
    )
    environment = {**os.environ, "OTEL_TRACES_EXPORTER": "console"}
    subprocess.run([sys.executable, "-c", script], check=True, env=environment, timeout=60)
