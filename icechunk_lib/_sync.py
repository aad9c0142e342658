"""Run the async engine from sync code.

Once zarr is imported, everything runs on zarr's own I/O loop (one loop, no nested-loop
errors in notebooks). Before that, a private background loop serves, so code that never
touches array data (the ``ick`` command, history, refs) does not pay for importing zarr.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run"]

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_lock = threading.Lock()


def _private_loop() -> asyncio.AbstractEventLoop:
    global _loop, _thread
    with _lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            _thread = threading.Thread(target=_loop.run_forever, name="ick-io", daemon=True)
            _thread.start()
        return _loop


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on the engine's event loop and return its result."""
    if "zarr" in sys.modules:
        from zarr.core.sync import sync

        return sync(coro)
    loop = _private_loop()
    if threading.current_thread() is _thread:
        coro.close()
        raise RuntimeError("a blocking ick call was made from inside ick's own event loop")
    return asyncio.run_coroutine_threadsafe(coro, loop).result()
