"""``tuning_from_settings``: the repository's ``StorageSettings`` (format) as the storage
layer's ``StorageTuning``. It sits above both, which may not import each other."""

from __future__ import annotations

import dataclasses

from icechunk_lib.format.storage_settings import StorageSettings
from icechunk_lib.storage.tuning import StorageTuning

__all__ = ["tuning_from_settings"]


def tuning_from_settings(
    settings: StorageSettings | None, base: StorageTuning | None = None
) -> StorageTuning:
    """``base`` (default: ``StorageTuning()``) with every setting that is not ``None``."""
    tuning = base or StorageTuning()
    if settings is None:
        return tuning
    changes: dict[str, object] = {}
    retries = settings.retries
    if retries is not None:
        if retries.max_tries is not None:
            changes["max_tries"] = retries.max_tries
        if retries.initial_backoff_ms is not None:
            changes["initial_backoff_seconds"] = retries.initial_backoff_ms / 1000
        if retries.max_backoff_ms is not None:
            changes["max_backoff_seconds"] = retries.max_backoff_ms / 1000
    concurrency = settings.concurrency
    if concurrency is not None:
        if concurrency.max_concurrent_requests_for_object is not None:
            changes["max_concurrent_requests_for_object"] = (
                concurrency.max_concurrent_requests_for_object
            )
        if concurrency.ideal_concurrent_request_size is not None:
            changes["ideal_concurrent_request_size"] = concurrency.ideal_concurrent_request_size
    if settings.minimum_size_for_multipart_upload is not None:
        changes["minimum_size_for_multipart_upload"] = settings.minimum_size_for_multipart_upload
    if settings.unsafe_use_conditional_create is not None:
        changes["use_conditional_create"] = settings.unsafe_use_conditional_create
    if settings.unsafe_use_conditional_update is not None:
        changes["use_conditional_update"] = settings.unsafe_use_conditional_update
    for name in ("storage_class", "metadata_storage_class", "chunks_storage_class"):
        value = getattr(settings, name)
        if value is not None:
            changes[name] = value
    return dataclasses.replace(tuning, **changes)  # type: ignore[arg-type]
