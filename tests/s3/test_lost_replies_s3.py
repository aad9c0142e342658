"""The storage contract for lost replies (``LostReplyTests``) on the real servers, with
replies lost by the fault proxy (tests/s3_proxy.py) after the server applied the write."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from s3_proxy import S3FaultProxy
from s3_servers import S3Server, s3_at

from icechunk_lib.storage.s3 import S3Storage
from icechunk_lib.storage.tuning import StorageTuning
from icechunk_lib.testing import LostReplyTests
from icechunk_lib.testing.storage import LoseReplies

FAST = StorageTuning(max_tries=4, initial_backoff_seconds=0.01, max_backoff_seconds=0.05)


@pytest.fixture
def proxy(s3_server: S3Server) -> Iterator[S3FaultProxy]:
    with S3FaultProxy(s3_server.endpoint_url) as running:
        yield running


class TestS3LostReplies(LostReplyTests):
    @pytest.fixture
    async def storage(self, proxy: S3FaultProxy, s3_server: S3Server) -> AsyncIterator[S3Storage]:
        storage = s3_at(s3_server, s3_server.fresh_prefix(), endpoint_url=proxy.endpoint_url)
        assert isinstance(storage, S3Storage)
        storage.apply_tuning(FAST)
        async with storage:
            yield storage

    @pytest.fixture
    def lose_replies(self, proxy: S3FaultProxy) -> LoseReplies:
        def lose(key: str, count: int, *, reads: bool = False) -> Callable[[], None]:
            rule = proxy.drop_replies(count, method=None if reads else "PUT", path_contains=key)

            def stop() -> None:
                rule.count = 0

            return stop

        return lose
