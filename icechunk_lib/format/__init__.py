"""Pure encoding and decoding of ick's on-disk objects: bytes in, structs out, no I/O.

Names are imported on first use, so reading refs or snapshots never loads numpy (only
manifests need it). ``_EXPORTS`` lists them by module, as in ``icechunk_lib/__init__.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from icechunk_lib._lazy import LazyExports

if TYPE_CHECKING:
    from icechunk_lib.format._framing import FORMAT_VERSION as FORMAT_VERSION
    from icechunk_lib.format._framing import HEADER_SIZE as HEADER_SIZE
    from icechunk_lib.format._framing import MAGIC as MAGIC
    from icechunk_lib.format._framing import ObjectKind as ObjectKind
    from icechunk_lib.format._framing import content_checksum as content_checksum
    from icechunk_lib.format._framing import decode_object as decode_object
    from icechunk_lib.format._framing import encode_object as encode_object
    from icechunk_lib.format.config import CachingConfig as CachingConfig
    from icechunk_lib.format.config import CompressionConfig as CompressionConfig
    from icechunk_lib.format.config import ManifestConfig as ManifestConfig
    from icechunk_lib.format.config import RepositoryConfig as RepositoryConfig
    from icechunk_lib.format.config import decode_config as decode_config
    from icechunk_lib.format.config import encode_config as encode_config
    from icechunk_lib.format.ids import decode_id as decode_id
    from icechunk_lib.format.ids import encode_id as encode_id
    from icechunk_lib.format.ids import is_object_id as is_object_id
    from icechunk_lib.format.ids import new_chunk_id as new_chunk_id
    from icechunk_lib.format.ids import new_node_id as new_node_id
    from icechunk_lib.format.ids import new_object_id as new_object_id
    from icechunk_lib.format.manifest import INLINE as INLINE
    from icechunk_lib.format.manifest import NATIVE as NATIVE
    from icechunk_lib.format.manifest import VIRTUAL as VIRTUAL
    from icechunk_lib.format.manifest import ChunkRef as ChunkRef
    from icechunk_lib.format.manifest import ChunkTable as ChunkTable
    from icechunk_lib.format.manifest import ManifestFile as ManifestFile
    from icechunk_lib.format.manifest_codec import decode_manifest as decode_manifest
    from icechunk_lib.format.manifest_codec import encode_manifest as encode_manifest

_EXPORTS = LazyExports(
    globals(),
    {
        "icechunk_lib.format._framing": (
            "FORMAT_VERSION",
            "HEADER_SIZE",
            "MAGIC",
            "ObjectKind",
            "content_checksum",
            "decode_object",
            "encode_object",
        ),
        "icechunk_lib.format.config": (
            "CachingConfig",
            "CompressionConfig",
            "ManifestConfig",
            "RepositoryConfig",
            "decode_config",
            "encode_config",
        ),
        "icechunk_lib.format.ids": (
            "decode_id",
            "encode_id",
            "is_object_id",
            "new_chunk_id",
            "new_node_id",
            "new_object_id",
        ),
        "icechunk_lib.format.manifest": (
            "INLINE",
            "NATIVE",
            "VIRTUAL",
            "ChunkRef",
            "ChunkTable",
            "ManifestFile",
        ),
        "icechunk_lib.format.manifest_codec": ("decode_manifest", "encode_manifest"),
    },
)
__all__ = _EXPORTS.names
__getattr__ = _EXPORTS.getattr
__dir__ = _EXPORTS.dir
