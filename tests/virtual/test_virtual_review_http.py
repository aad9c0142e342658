"""Hostile HTTP servers behind a virtual chunk container: a 206 reply that is not the range
asked for, weak ETags under a server that compares If-Match strongly, and a redirect to
another host. Each either serves the chunk's own bytes or fails naming the location."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zarr
from aiohttp import web
from http_servers import LoopbackHttpServer

import icechunk_lib as ic
from icechunk_lib.errors import VirtualSourceChangedError, VirtualSourceError

BODY = bytes(range(256)) * 4
"""The served object: 1 KiB whose every byte says its offset (mod 256)."""
CHUNK = 64


class OddServer(LoopbackHttpServer):
    """Serves ``/data/obj`` (``BODY``) on 127.0.0.1, misbehaving as ``mode`` says:
    ``"whole-206"`` (206 with the whole body and no Content-Range), ``"weak"`` (a weak
    ETag, If-Match compared strongly as RFC 9110 says: a weak tag never matches),
    ``"redirect"`` (302 to ``/elsewhere``, which counts its hits)."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode
        self.etag = 'W/"v1"'
        self.elsewhere = 0

    async def _obj(self, request: web.Request) -> web.StreamResponse:
        if self.mode == "redirect":
            raise web.HTTPFound(f"http://127.0.0.1:{self.port}/elsewhere")
        if self.mode == "whole-206":
            return web.Response(status=206, body=BODY)
        match = re.fullmatch(r"bytes=(\d+)-(\d+)", request.headers.get("Range", ""))
        assert match is not None
        if_match = request.headers.get("If-Match")
        strong = [t.strip() for t in (if_match or "").split(",") if not t.strip().startswith("W/")]
        if if_match is not None and self.etag.removeprefix("W/") not in strong:
            return web.Response(status=412)
        start, end = int(match.group(1)), int(match.group(2)) + 1
        headers = {
            "ETag": self.etag,
            "Content-Range": f"bytes {start}-{min(end, len(BODY)) - 1}/{len(BODY)}",
        }
        return web.Response(status=206, body=BODY[start:end], headers=headers)

    async def _elsewhere(self, request: web.Request) -> web.StreamResponse:
        self.elsewhere += 1
        return web.Response(status=206, body=b"\xff" * len(BODY))

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/data/obj", self._obj)
        app.router.add_get("/elsewhere", self._elsewhere)

    @property
    def prefix(self) -> str:
        return f"http://127.0.0.1:{self.port}/data/"


@pytest.fixture
def odd_server(request: pytest.FixtureRequest) -> Iterator[OddServer]:
    server = OddServer(request.param)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _array(tmp_path: Path, server: OddServer, etag: str | None) -> zarr.Array:
    """A uint8 array of 1 KiB whose chunks are virtual, at their own offsets of the object."""
    config = ic.RepositoryConfig.default()
    config.set_virtual_chunk_container(ic.VirtualChunkContainer(server.prefix, ic.http_store()))
    config.storage = ic.StorageSettings(
        retries=ic.StorageRetriesSettings(max_tries=1, initial_backoff_ms=1)
    )
    repo = ic.Repository.create(
        ic.local_filesystem_storage(str(tmp_path / "repo")),
        config,
        authorize_virtual_chunk_access={server.prefix: None},
    )
    session = repo.writable_session("main")
    zarr.create_array(
        session.store, name="x", shape=(len(BODY),), chunks=(CHUNK,), dtype="u1", compressors=None
    )
    for i in range(len(BODY) // CHUNK):
        session.store.set_virtual_ref(
            f"x/c/{i}", server.prefix + "obj", offset=i * CHUNK, length=CHUNK, checksum=etag
        )
    session.commit("virtual")
    store = repo.readonly_session(branch="main").store
    return zarr.open_array(store, path="x", mode="r")


@pytest.mark.parametrize("odd_server", ["whole-206"], indirect=True)
def test_206_with_whole_body_and_no_content_range_is_not_served_as_the_range(
    tmp_path: Path, odd_server: OddServer
) -> None:
    arr = _array(tmp_path, odd_server, None)
    # Chunk 0 would come out right by luck (the body starts at 0); chunk 3 must not be
    # bytes 0-63 of the object.
    with pytest.raises(VirtualSourceError, match=re.escape(odd_server.prefix + "obj")):
        arr[3 * CHUNK : 4 * CHUNK]


@pytest.mark.parametrize("odd_server", ["weak"], indirect=True)
def test_weak_etag_reads_from_a_server_comparing_if_match_strongly(
    tmp_path: Path, odd_server: OddServer
) -> None:
    arr = _array(tmp_path, odd_server, 'W/"v1"')
    np.testing.assert_array_equal(arr[:], np.frombuffer(BODY, dtype="u1"))
    odd_server.etag = 'W/"v2"'  # the object changed: still refused, by the reply's ETag
    with pytest.raises(VirtualSourceChangedError, match=re.escape(odd_server.prefix + "obj")):
        arr[:]


@pytest.mark.parametrize("odd_server", ["redirect"], indirect=True)
def test_redirect_is_not_followed(tmp_path: Path, odd_server: OddServer) -> None:
    arr = _array(tmp_path, odd_server, None)
    with pytest.raises(VirtualSourceError, match=re.escape(odd_server.prefix + "obj")) as info:
        arr[0:CHUNK]
    assert "302" in str(info.value)
    assert odd_server.elsewhere == 0
