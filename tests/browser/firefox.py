"""Just enough WebDriver BiDi to drive Debian's Firefox ESR: open a page, run script in it,
wait for what it shows, take a screenshot.

Firefox speaks BiDi natively (`--remote-debugging-port`). Playwright would be the tool, but its
Firefox channel sends `emulation.setMediaFeaturesOverride`, which ESR 153 does not implement,
so every new context fails; this small client uses only commands ESR has
(`session.new`, `browsingContext.*`, `script.evaluate`).
"""

import asyncio
import base64
import contextlib
import itertools
import json
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import websockets

from tests.ops.conftest import free_port

READY = re.compile(rb"WebDriver BiDi listening on (ws://\S+)")


class BidiError(RuntimeError):
    """Firefox answered a command with an error."""


class Firefox:
    """One headless Firefox and its first tab."""

    def __init__(self, socket: Any, context: str) -> None:
        self.socket = socket
        self.context = context
        self._ids = itertools.count(1)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """A command and its result; events that arrive meanwhile are not needed, skipped."""
        command_id = next(self._ids)
        await self.socket.send(json.dumps({"id": command_id, "method": method, "params": params}))
        while True:
            message = json.loads(await self.socket.recv())
            if message.get("id") != command_id:
                continue
            if message.get("type") == "error":
                raise BidiError(f"{method}: {message.get('error')}: {message.get('message')}")
            result: dict[str, Any] = message["result"]
            return result

    async def goto(self, url: str) -> None:
        await self.send("browsingContext.navigate", context=self.context, url=url, wait="complete")

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited if it is a promise)."""
        result = await self.send(
            "script.evaluate",
            expression=expression,
            target={"context": self.context},
            awaitPromise=True,
        )
        if result.get("type") == "exception":
            raise BidiError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return _plain(result["result"])

    async def wait_for(self, expression: str, within: float = 15.0) -> Any:
        """Until the expression is truthy in the page (re-evaluated as the page updates), like
        Playwright's `expect`: the page changes when the stream says so, not on a schedule."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"not within {within}s: {expression} (last: {value!r})")
            await asyncio.sleep(0.1)

    async def screenshot(self, path: Path) -> None:
        result = await self.send("browsingContext.captureScreenshot", context=self.context)
        await asyncio.to_thread(path.write_bytes, base64.b64decode(result["data"]))


def _plain(value: dict[str, Any]) -> Any:
    """A BiDi remote value as Python: primitives and arrays of them."""
    kind = value.get("type")
    if kind in ("string", "number", "boolean"):
        return value["value"]
    if kind == "array":
        return [_plain(item) for item in value.get("value", [])]
    return None


@contextlib.asynccontextmanager
async def launch(executable: str, width: int = 1440, height: int = 900) -> AsyncIterator[Firefox]:
    """A headless Firefox with a fresh profile, driven over BiDi; killed at the end."""
    with tempfile.TemporaryDirectory(prefix="leadrouter-firefox-") as profile:
        process = await asyncio.create_subprocess_exec(
            executable,
            "--headless",
            "--no-remote",
            "--profile",
            profile,
            f"--width={width}",
            f"--height={height}",
            "--remote-debugging-port",
            str(free_port()),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        drain: asyncio.Task[None] | None = None
        try:
            url = await _listening_url(process)
            assert process.stderr is not None
            drain = asyncio.create_task(_discard(process.stderr))  # a full pipe would stall it
            async with websockets.connect(f"{url}/session", max_size=None) as socket:
                firefox = Firefox(socket, "")
                await firefox.send("session.new", capabilities={})
                tree = await firefox.send("browsingContext.getTree")
                firefox.context = tree["contexts"][0]["context"]
                yield firefox
                with contextlib.suppress(Exception):
                    await firefox.send("session.end")
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            if drain is not None:
                drain.cancel()


async def _listening_url(process: asyncio.subprocess.Process) -> str:
    """Firefox prints where BiDi listens on stderr once it is ready."""
    assert process.stderr is not None
    async with asyncio.timeout(60):
        while line := await process.stderr.readline():
            if found := READY.search(line):
                return found.group(1).decode()
    raise RuntimeError("firefox exited before WebDriver BiDi listened")


async def _discard(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass
