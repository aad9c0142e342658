"""``StorageTuning``: the storage layer's own frozen view of how to talk to object storage.

The repository config spells these as Icechunk does (``StorageSettings``, in ``format``); the
storage layer cannot import ``format``, so ``icechunk_lib.storage_settings.tuning_from_settings``
translates one into the other and a repository hands the result to ``Storage.apply_tuning``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StorageTuning"]

MB = 1000 * 1000
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class StorageTuning:
    """Retries, concurrency, request sizes and conditional-write use of an object storage."""

    max_tries: int = 10
    """Tries per request, the first included (1: never retry)."""
    initial_backoff_seconds: float = 0.1
    """The first retry waits up to this long; each later one up to twice the previous."""
    max_backoff_seconds: float = 10.0
    """No retry waits longer than this."""
    max_concurrent_requests: int = 64
    """Requests in flight at once per event loop (and HTTP connections kept open)."""
    max_concurrent_requests_for_object: int = 18
    """Ranged GETs (or upload parts) one large object is split into at most, at a time."""
    ideal_concurrent_request_size: int = 12 * MIB
    """Bytes fetched by one ranged GET of a large object, and the size of an upload part."""
    minimum_size_for_multipart_upload: int = 100 * MB
    """Objects of at least this many bytes are uploaded in parts."""
    use_conditional_create: bool = True
    """Send ``If-None-Match: *`` for create-if-absent (Icechunk's
    ``unsafe_use_conditional_create``); False emulates it with a HEAD then a PUT (racy)."""
    use_conditional_update: bool = True
    """Send ``If-Match`` for compare-and-swap (``unsafe_use_conditional_update``); False
    compares the ETag read just before the PUT (racy)."""
    storage_class: str | None = None
    """The S3 storage class of every object (``None``: the bucket's default)."""
    metadata_storage_class: str | None = None
    """The storage class of everything but chunks (defaults to ``storage_class``)."""
    chunks_storage_class: str | None = None
    """The storage class of chunks (defaults to ``storage_class``)."""

    def __post_init__(self) -> None:
        if self.max_tries < 1:
            raise ValueError(f"max_tries must be at least 1, got {self.max_tries}")
        if self.initial_backoff_seconds < 0 or self.max_backoff_seconds < 0:
            raise ValueError("backoff durations must not be negative")
        if self.max_concurrent_requests < 1 or self.max_concurrent_requests_for_object < 1:
            raise ValueError("concurrency limits must be at least 1")
        if self.ideal_concurrent_request_size < 1:
            raise ValueError("ideal_concurrent_request_size must be at least 1 byte")
        if self.minimum_size_for_multipart_upload < 1:
            raise ValueError("minimum_size_for_multipart_upload must be at least 1 byte")
