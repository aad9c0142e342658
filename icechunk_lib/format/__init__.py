"""Pure encoding and decoding of ick's on-disk objects: bytes in, structs out, no I/O.

Names are imported on first use, so reading refs or snapshots never loads numpy (only
manifests need it). ``_EXPORTS`` maps each to its module, as in ``icechunk_lib/__init__.py``.
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
    from icechunk_lib.format.ids import new_snapshot_id as new_snapshot_id
    from icechunk_lib.format.manifest import INLINE as INLINE
    from icechunk_lib.format.manifest import NATIVE as NATIVE
    from icechunk_lib.format.manifest import VIRTUAL as VIRTUAL
    from icechunk_lib.format.manifest import ChunkRef as ChunkRef
    from icechunk_lib.format.manifest import ChunkTable as ChunkTable
    from icechunk_lib.format.manifest import ManifestFile as ManifestFile
    from icechunk_lib.format.manifest_codec import decode_manifest as decode_manifest
    from icechunk_lib.format.manifest_codec import encode_manifest as encode_manifest
    from icechunk_lib.format.preload import ManifestPreloadCondition as ManifestPreloadCondition
    from icechunk_lib.format.preload import ManifestPreloadConfig as ManifestPreloadConfig
    from icechunk_lib.format.preload import preload_matches as preload_matches
    from icechunk_lib.format.splitting import ManifestSplitCondition as ManifestSplitCondition
    from icechunk_lib.format.splitting import ManifestSplitDimCondition as ManifestSplitDimCondition
    from icechunk_lib.format.splitting import ManifestSplittingConfig as ManifestSplittingConfig
    from icechunk_lib.format.splitting import split_edges as split_edges
    from icechunk_lib.format.splitting import split_sizes_for as split_sizes_for

_EXPORTS = LazyExports(
    globals(),
    {
        "FORMAT_VERSION": "icechunk_lib.format._framing",
        "HEADER_SIZE": "icechunk_lib.format._framing",
        "INLINE": "icechunk_lib.format.manifest",
        "MAGIC": "icechunk_lib.format._framing",
        "NATIVE": "icechunk_lib.format.manifest",
        "VIRTUAL": "icechunk_lib.format.manifest",
        "CachingConfig": "icechunk_lib.format.config",
        "ChunkRef": "icechunk_lib.format.manifest",
        "ChunkTable": "icechunk_lib.format.manifest",
        "CompressionConfig": "icechunk_lib.format.config",
        "ManifestConfig": "icechunk_lib.format.config",
        "ManifestPreloadCondition": "icechunk_lib.format.preload",
        "ManifestPreloadConfig": "icechunk_lib.format.preload",
        "ManifestSplitCondition": "icechunk_lib.format.splitting",
        "ManifestSplitDimCondition": "icechunk_lib.format.splitting",
        "ManifestSplittingConfig": "icechunk_lib.format.splitting",
        "ManifestFile": "icechunk_lib.format.manifest",
        "ObjectKind": "icechunk_lib.format._framing",
        "RepositoryConfig": "icechunk_lib.format.config",
        "content_checksum": "icechunk_lib.format._framing",
        "decode_config": "icechunk_lib.format.config",
        "decode_id": "icechunk_lib.format.ids",
        "decode_manifest": "icechunk_lib.format.manifest_codec",
        "decode_object": "icechunk_lib.format._framing",
        "encode_config": "icechunk_lib.format.config",
        "encode_id": "icechunk_lib.format.ids",
        "encode_manifest": "icechunk_lib.format.manifest_codec",
        "encode_object": "icechunk_lib.format._framing",
        "is_object_id": "icechunk_lib.format.ids",
        "new_chunk_id": "icechunk_lib.format.ids",
        "new_node_id": "icechunk_lib.format.ids",
        "new_object_id": "icechunk_lib.format.ids",
        "new_snapshot_id": "icechunk_lib.format.ids",
        "preload_matches": "icechunk_lib.format.preload",
        "split_edges": "icechunk_lib.format.splitting",
        "split_sizes_for": "icechunk_lib.format.splitting",
    },
)
__all__ = _EXPORTS.names
__getattr__ = _EXPORTS.getattr
__dir__ = _EXPORTS.dir
