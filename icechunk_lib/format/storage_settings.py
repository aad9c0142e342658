"""How a repository talks to its object storage, as Icechunk 1.1 spells it: ``StorageSettings``
with ``StorageConcurrencySettings`` and ``StorageRetriesSettings``, saved in the repository
config (``RepositoryConfig.storage``). ``None`` everywhere means "the storage's default".

Pure data: the storage layer reads its own ``StorageTuning``, which
``icechunk_lib.storage_settings.tuning_from_settings`` makes from these.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = [
    "SETTING_KINDS",
    "StorageConcurrencySettings",
    "StorageRetriesSettings",
    "StorageSettings",
]

_Positive = Annotated[int, msgspec.Meta(ge=1)]
_NonNegative = Annotated[int, msgspec.Meta(ge=0)]


class StorageRetriesSettings(msgspec.Struct):
    """How failed requests are retried: exponential backoff with jitter."""

    max_tries: _Positive | None = None
    """Tries per request, the first included; 1 disables retries."""
    initial_backoff_ms: _NonNegative | None = None
    """The first retry waits up to this long (milliseconds)."""
    max_backoff_ms: _NonNegative | None = None
    """No retry waits longer than this (milliseconds)."""


class StorageConcurrencySettings(msgspec.Struct):
    """How large objects are split into concurrent requests."""

    max_concurrent_requests_for_object: _Positive | None = None
    """Concurrent ranged GETs (or upload parts) for one object, at most."""
    ideal_concurrent_request_size: _Positive | None = None
    """Bytes per ranged GET (and per upload part)."""


class StorageSettings(msgspec.Struct):
    """Icechunk's storage settings; every field is optional."""

    concurrency: StorageConcurrencySettings | None = None
    retries: StorageRetriesSettings | None = None
    unsafe_use_conditional_create: bool | None = None
    """False: create without ``If-None-Match`` (a read first; racing writers can lose)."""
    unsafe_use_conditional_update: bool | None = None
    """False: update without ``If-Match`` (a read first; racing writers can lose)."""
    unsafe_use_metadata: bool | None = None
    """Accepted for Icechunk compatibility; ick writes no object metadata either way."""
    storage_class: str | None = None
    """The S3 storage class of every object (``STANDARD_IA``, ...)."""
    metadata_storage_class: str | None = None
    """The storage class of everything but chunks; defaults to ``storage_class``."""
    chunks_storage_class: str | None = None
    """The storage class of chunks; defaults to ``storage_class``."""
    minimum_size_for_multipart_upload: _Positive | None = None
    """Objects of at least this many bytes are uploaded in parts (default 100 MB)."""


SETTING_KINDS: dict[str, type] = {
    "concurrency.max_concurrent_requests_for_object": int,
    "concurrency.ideal_concurrent_request_size": int,
    "retries.max_tries": int,
    "retries.initial_backoff_ms": int,
    "retries.max_backoff_ms": int,
    "unsafe_use_conditional_create": bool,
    "unsafe_use_conditional_update": bool,
    "unsafe_use_metadata": bool,
    "storage_class": str,
    "metadata_storage_class": str,
    "chunks_storage_class": str,
    "minimum_size_for_multipart_upload": int,
}
"""Every setting by its dotted name below ``storage``, with the type its text parses to
(what ``RepositoryConfig.with_value("storage.retries.max_tries", "5")`` needs when unset)."""
