"""Ctrl-C while a blocking call waits on the engine's loop cancels the work, not just the wait."""

from __future__ import annotations

import asyncio
import signal
import threading

import pytest

from icechunk_lib import _sync


def test_an_interrupted_call_is_cancelled_and_unwound_before_it_raises() -> None:
    unwound = threading.Event()
    started = threading.Event()

    async def slow() -> None:
        started.set()
        try:
            await asyncio.sleep(30)  # far longer than the test takes
        finally:
            unwound.set()

    def interrupt() -> None:
        started.wait(10)
        signal.pthread_kill(main, signal.SIGINT)  # Ctrl-C

    main = threading.get_ident()
    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        _sync.run(slow())
    assert unwound.is_set()  # cancelled on the loop and done by the time the caller sees it

    async def still_running() -> list[str]:
        current = asyncio.current_task()
        return [repr(t) for t in asyncio.all_tasks() if t is not current]

    assert _sync.run(still_running()) == []
    assert _sync.run(asyncio.sleep(0, "the loop still serves")) == "the loop still serves"


def test_shutdown_cancels_what_is_left_and_the_loop_still_serves() -> None:
    loop_tasks: list[asyncio.Task[None]] = []

    async def leave_a_task() -> None:
        loop_tasks.append(asyncio.get_running_loop().create_task(asyncio.sleep(30)))

    _sync.run(leave_a_task())
    _sync.shutdown()
    assert loop_tasks[0].cancelled()
