"""Pure encoding and decoding of ick's on-disk objects: bytes in, structs out, no I/O.

Names are imported on first use, so reading refs or snapshots never loads numpy (only
manifests need it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from icechunk_lib.format._framing import (
        FORMAT_VERSION,
        HEADER_SIZE,
        MAGIC,
        ObjectKind,
        content_checksum,
        decode_object,
        encode_object,
    )
    from icechunk_lib.format.config import (
        CachingConfig,
        CompressionConfig,
        ManifestConfig,
        RepositoryConfig,
        decode_config,
        encode_config,
    )
    from icechunk_lib.format.ids import (
        decode_id,
        encode_id,
        is_object_id,
        new_chunk_id,
        new_node_id,
        new_object_id,
    )
    from icechunk_lib.format.manifest import (
        INLINE,
        NATIVE,
        VIRTUAL,
        ChunkRef,
        ChunkTable,
        ManifestFile,
        decode_manifest,
        encode_manifest,
    )

_LAZY = {
    "CachingConfig": "icechunk_lib.format.config",
    "ChunkRef": "icechunk_lib.format.manifest",
    "ChunkTable": "icechunk_lib.format.manifest",
    "CompressionConfig": "icechunk_lib.format.config",
    "FORMAT_VERSION": "icechunk_lib.format._framing",
    "HEADER_SIZE": "icechunk_lib.format._framing",
    "INLINE": "icechunk_lib.format.manifest",
    "MAGIC": "icechunk_lib.format._framing",
    "ManifestConfig": "icechunk_lib.format.config",
    "ManifestFile": "icechunk_lib.format.manifest",
    "NATIVE": "icechunk_lib.format.manifest",
    "ObjectKind": "icechunk_lib.format._framing",
    "RepositoryConfig": "icechunk_lib.format.config",
    "VIRTUAL": "icechunk_lib.format.manifest",
    "content_checksum": "icechunk_lib.format._framing",
    "decode_config": "icechunk_lib.format.config",
    "decode_id": "icechunk_lib.format.ids",
    "decode_manifest": "icechunk_lib.format.manifest",
    "decode_object": "icechunk_lib.format._framing",
    "encode_config": "icechunk_lib.format.config",
    "encode_id": "icechunk_lib.format.ids",
    "encode_manifest": "icechunk_lib.format.manifest",
    "encode_object": "icechunk_lib.format._framing",
    "is_object_id": "icechunk_lib.format.ids",
    "new_chunk_id": "icechunk_lib.format.ids",
    "new_node_id": "icechunk_lib.format.ids",
    "new_object_id": "icechunk_lib.format.ids",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "FORMAT_VERSION",
    "HEADER_SIZE",
    "INLINE",
    "MAGIC",
    "NATIVE",
    "VIRTUAL",
    "CachingConfig",
    "ChunkRef",
    "ChunkTable",
    "CompressionConfig",
    "ManifestConfig",
    "ManifestFile",
    "ObjectKind",
    "RepositoryConfig",
    "content_checksum",
    "decode_config",
    "decode_id",
    "decode_manifest",
    "decode_object",
    "encode_config",
    "encode_id",
    "encode_manifest",
    "encode_object",
    "is_object_id",
    "new_chunk_id",
    "new_node_id",
    "new_object_id",
]
