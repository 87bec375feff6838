"""Run a coroutine to completion from a synchronous test, whatever runs in the main thread.

Playwright's sync API (the browser tests, in the same session) keeps an event loop running in the
main thread, where ``asyncio.run`` refuses to start another: the coroutine gets a thread of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="aio") as pool:
        return pool.submit(asyncio.run, coroutine).result()
