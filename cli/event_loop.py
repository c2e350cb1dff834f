"""One way to run a process's main coroutine: on uvloop where it is installed.

uvloop moves the socket and callback work of the event loop into C, where a process whose
time goes to AMQP frames spends much of it (the gain is measured in bench/README.md).
"""

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # not on every platform (e.g. Windows): the stdlib loop works too
        return asyncio.run(main)
    return uvloop.run(main)
