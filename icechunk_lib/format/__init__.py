"""Pure encoding and decoding of ick's on-disk objects: bytes in, structs out, no I/O."""

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
