"""Run the async engine from sync code on zarr's own I/O loop (one loop, no nesting errors)."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

from zarr.core.sync import sync as _zarr_sync

__all__ = ["run"]

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on zarr's background event loop and return its result."""
    return _zarr_sync(coro)
