"""S3 replies' timestamps are parsed without dateutil (botocore's costliest step per request),
to the same aware UTC datetimes botocore gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dateutil.parser
import pytest
import s3_servers
from botocore.utils import parse_timestamp as botocore_parse
from s3_servers import S3Server

import icechunk_lib as ic
from icechunk_lib.storage._s3_client import parse_timestamp


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-27T16:16:15.000Z",
        "2026-11-27T16:16:15Z",
        "2026-11-27T16:16:15.123456Z",
        "2026-11-27T18:16:15+02:00",
        "Fri, 27 Nov 2026 16:16:15 GMT",
        "Mon, 02 Feb 2026 03:04:05 GMT",
    ],
)
def test_forms_s3_sends_parse_as_botocore_does(text: str) -> None:
    ours = parse_timestamp(text)
    assert ours == botocore_parse(text)
    assert ours.utcoffset() == timedelta(0)


@pytest.mark.parametrize("value", ["1764260175", 1764260175, "27 Nov 2026 16:16:15"])
def test_other_forms_fall_back_to_botocore(value: object) -> None:
    assert parse_timestamp(value) == botocore_parse(value)


async def test_listing_needs_no_dateutil(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("dateutil parsed a timestamp")

    before = datetime.now(UTC) - timedelta(minutes=5)
    async with ic.s3_storage(
        bucket=s3_servers.BUCKET, prefix=s3_server.fresh_prefix(), **s3_server.storage_kwargs()
    ) as storage:
        await storage.put("a", b"1")
        monkeypatch.setattr(dateutil.parser, "parse", refuse)
        [info] = [info async for info in storage.list("")]
        assert before < info.last_modified < datetime.now(UTC) + timedelta(minutes=5)
        assert await storage.remove_leftovers(before) == 0
