"""The ``s3`` backend of the benchmarks: one SeaweedFS server on loopback for the whole run.

The server starts on first use, on free ports, through the same launcher the tests use
(``tests/s3_servers.py``), and ``shutdown()`` stops it at the end of the run (SIGTERM, then
SIGKILL after a timeout) and deletes its data. Every repository (or plain store) gets a
prefix of its own in one bucket. A ``RequestCounter`` proxy sits in front of the server for
the runs that count requests; timed runs talk to the server directly.
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

from zarr.abc.store import Store

from benchmarks.harness import Metric
from benchmarks.request_counter import KINDS, RequestCounter

__all__ = ["S3Backend", "backend", "counting", "request_metrics", "shutdown"]

ROOT = Path(__file__).resolve().parent.parent


def _servers() -> ModuleType:
    """``tests/s3_servers.py``: the tests' launcher of real servers, shared, not copied."""
    loaded = sys.modules.get("s3_servers")
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location("s3_servers", ROOT / "tests" / "s3_servers.py")
    if spec is None or spec.loader is None:
        raise RuntimeError("tests/s3_servers.py is missing: the s3 backend needs it")
    module = importlib.util.module_from_spec(spec)
    sys.modules["s3_servers"] = module
    spec.loader.exec_module(module)
    return module


class S3Backend:
    """A running SeaweedFS, its bucket, a request-counting proxy and an s3fs for zarr."""

    def __init__(self) -> None:
        servers = _servers()
        print("    starting SeaweedFS on loopback", flush=True)
        self._servers = servers
        self.server = servers.start("seaweedfs")
        self.bucket: str = servers.BUCKET
        self.counter = RequestCounter(self.server.endpoint_url).start()
        self._fs: dict[bool, Any] = {}

    def new_prefix(self, path: Path) -> str:
        """A fresh one-segment prefix, named after the scratch directory of the round."""
        return f"{path.parent.name or path.name}-{uuid.uuid4().hex[:8]}"

    def storage_kwargs(self, counted: bool = False) -> dict[str, Any]:
        """``s3_storage`` keywords (both engines spell them alike) but bucket and prefix."""
        kwargs: dict[str, Any] = self.server.storage_kwargs()
        if counted:
            kwargs["endpoint_url"] = self.counter.endpoint_url
        return kwargs

    def requests(self, prefix: str) -> Counter[str]:
        """Requests counted so far for ``prefix`` (only through a ``counted`` endpoint)."""
        return self.counter.counts(prefix)

    def fsspec_store(self, prefix: str, read_only: bool, counted: bool = False) -> Store:
        """zarr's ``FsspecStore`` on s3fs for ``prefix``: the plain-store floor on S3.

        s3fs with its defaults, as ``FsspecStore.from_url("s3://...")`` makes it: the floor
        is what a zarr user gets.
        """
        from zarr.storage import FsspecStore

        fs = self._filesystem(counted)
        return FsspecStore(fs, path=f"{self.bucket}/{prefix}", read_only=read_only)

    def _filesystem(self, counted: bool) -> Any:
        """One asynchronous s3fs per endpoint, made on zarr's event loop (which drives it)."""
        if counted not in self._fs:
            from zarr.core.sync import sync

            async def make() -> Any:
                import asyncio

                import s3fs

                kwargs = self.server.client_kwargs()
                if counted:
                    kwargs["client_kwargs"]["endpoint_url"] = self.counter.endpoint_url
                fs = s3fs.S3FileSystem(asynchronous=True, loop=asyncio.get_running_loop(), **kwargs)
                await fs.set_session()
                return fs

            self._fs[counted] = sync(make())
        return self._fs[counted]

    def close(self) -> None:
        from zarr.core.sync import sync

        for fs in self._fs.values():
            creator = getattr(fs, "_s3creator", None)
            if creator is not None:  # on the loop that made it, before that loop goes
                sync(creator.__aexit__(None, None, None))
        self._fs.clear()
        self.counter.stop()
        self.server.stop()


_backend: S3Backend | None = None
_failed: BaseException | None = None


def backend() -> S3Backend:
    """The run's S3 backend, started on first use; a server that would not start is not
    tried again for every engine and case."""
    global _backend, _failed
    if _failed is not None:
        raise RuntimeError(f"the S3 server did not start: {_failed}")
    if _backend is None:
        try:
            _backend = S3Backend()
        except Exception as exc:
            _failed = exc
            raise
    return _backend


def shutdown() -> None:
    """Stop the server (if one was started) and delete its data."""
    global _backend
    if _backend is not None:
        print("    stopping SeaweedFS", flush=True)
        _backend, done = None, _backend
        done.close()


class counting:  # lower case: used like a function, ``with counting(prefix) as c: ...``
    """The requests a block sends for ``prefix`` (through a ``counted`` endpoint), by kind."""

    counts: Counter[str]

    def __init__(self, prefix: str | None) -> None:
        if prefix is None:
            raise ValueError("requests are counted only on the s3 backend")
        self._prefix = prefix

    def __enter__(self) -> counting:
        self._before = backend().requests(self._prefix)
        return self

    def __exit__(self, *exc: object) -> None:
        after = backend().requests(self._prefix)
        self.counts = Counter({kind: after[kind] - self._before[kind] for kind in KINDS})

    def values(self, name: str) -> dict[str, float]:
        """Metric values ``<name>_<kind>`` and ``<name>_total`` of what was counted."""
        out: dict[str, float] = {f"{name}_{kind.lower()}": self.counts[kind] for kind in KINDS}
        out[f"{name}_total"] = sum(self.counts.values())
        return out


def request_metrics(
    name: str, label: str, engines: tuple[str, ...] | None = None, kinds: bool = True
) -> tuple[Metric, ...]:
    """The metrics ``counting.values(name)`` fills: the total, then one per kind."""
    out = [Metric(f"{name}_total", f"{label}: requests", "requests", engines, ("s3",), False)]
    if kinds:
        out += [
            Metric(f"{name}_{k.lower()}", f"{label}: {k}", "requests", engines, ("s3",), False)
            for k in KINDS
        ]
    return tuple(out)
