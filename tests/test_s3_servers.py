"""The test servers themselves: each serves S3 on loopback and honours conditional writes,
so the S3 suites that use them prove what they claim."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import s3fs
from s3_servers import BUCKET, S3Server


def test_server_listens_on_loopback_only(s3_server: S3Server) -> None:
    assert urlsplit(s3_server.endpoint_url).hostname == "127.0.0.1"
    assert s3_server.process.poll() is None


def test_server_honours_conditional_writes(s3_server: S3Server) -> None:
    fs = s3fs.S3FileSystem(**s3_server.client_kwargs())
    path = f"{BUCKET}/{s3_server.fresh_prefix()}/probe"
    fs.pipe_file(path, b"one", mode="create")
    with pytest.raises(OSError, match="pre-conditions"):
        fs.pipe_file(path, b"two", mode="create")
    etag = fs.info(path)["ETag"]
    with pytest.raises(OSError, match="pre-conditions"):
        fs.pipe_file(path, b"three", IfMatch='"00000000000000000000000000000000"')
    fs.pipe_file(path, b"four", IfMatch=etag)
    assert fs.cat_file(path) == b"four"
