"""`leadrouter asyncapi` as an operator runs it: the generated document, stable JSON."""

import asyncio
import json
import os

from messaging.asyncapi import asyncapi_document, asyncapi_json
from tests.ops.conftest import LEADROUTER, CliRunner


async def test_prints_the_document(cli: CliRunner) -> None:
    result = await cli("asyncapi")

    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == asyncapi_document()
    assert result.stdout == asyncapi_json()  # indent 2, sorted keys: diffs stay readable


async def test_needs_no_settings() -> None:
    """Generated from the code alone, so a bad or missing environment does not matter."""
    env = {**os.environ, "AMQP_URL": "http://wrong", "METRICS_PORT": "not-a-port"}
    process = await asyncio.create_subprocess_exec(
        LEADROUTER, "asyncapi", env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()

    assert process.returncode == 0
    assert json.loads(out)["asyncapi"] == "3.0.0"
