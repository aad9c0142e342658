"""Zarr v2 metadata (``.zarray``, ``.zgroup``, ``.zattrs``) as Zarr v3 ``zarr.json`` bytes.

Kerchunk and VirtualiZarr describe arrays in Zarr v2 terms; a repository holds Zarr v3. The
conversion keeps the bytes of every chunk readable as they are: the v2 filters and compressor
become the v3 codec chain that decodes them (zarr's own codecs where their configuration
means the same, else the ``numcodecs.*`` codecs zarr ships), the dtype's byte order becomes
the ``bytes`` codec's ``endian``, order ``"F"`` a ``transpose`` codec, and the dimension
separator a ``v2`` chunk key encoding (so chunk keys keep their v2 spelling, ``x/0.0``).
``_ARRAY_DIMENSIONS`` becomes ``dimension_names``. zarr validates the result.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["MetadataError", "array_v3", "group_v3"]

_DIMS = "_ARRAY_DIMENSIONS"
_VLEN = ("vlen-utf8", "vlen-bytes")


class MetadataError(ValueError):
    """Metadata that cannot become Zarr v3; the message says why (the caller names the key)."""


def group_v3(attrs: dict[str, Any]) -> bytes:
    """``zarr.json`` of a group with ``attrs``."""
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.group import GroupMetadata

    meta = GroupMetadata(attributes=attrs, zarr_format=3)
    return meta.to_buffer_dict(default_buffer_prototype())["zarr.json"].to_bytes()


def array_v3(zarray: object, attrs: dict[str, Any]) -> bytes:
    """``zarr.json`` of the array a ``.zarray`` document describes, with ``attrs``.

    Raises:
        MetadataError: malformed metadata, or a filter chain Zarr v3 cannot express.
    """
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.chunk_key_encodings import V2ChunkKeyEncoding
    from zarr.core.metadata.v2 import ArrayV2Metadata
    from zarr.core.metadata.v3 import ArrayV3Metadata

    if not isinstance(zarray, dict):
        raise MetadataError(f"a .zarray is a JSON object, not {type(zarray).__name__}")
    if zarray.get("zarr_format", 2) != 2:
        raise MetadataError(f"zarr_format is {zarray.get('zarr_format')!r}, expected 2")
    attrs = dict(attrs)
    dims = attrs.pop(_DIMS, None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zarr warns about v2 codecs it still reads
            v2 = ArrayV2Metadata.from_dict({**zarray, "zarr_format": 2, "attributes": {}})
    except Exception as exc:
        raise MetadataError(_reason(exc)) from None
    ndim = len(v2.shape)
    if dims is not None and (
        not isinstance(dims, list) or len(dims) != ndim or not all(isinstance(d, str) for d in dims)
    ):
        raise MetadataError(f"{_DIMS} must list {ndim} dimension name(s), not {dims!r}")
    if v2.order not in ("C", "F"):
        raise MetadataError(f"order {v2.order!r} is neither 'C' nor 'F'")

    array_array, array_bytes, bytes_bytes = _codecs(v2)
    fill = v2.fill_value if v2.fill_value is not None else v2.dtype.default_scalar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            meta = ArrayV3Metadata(
                shape=v2.shape,
                data_type=v2.dtype,
                chunk_grid=v2.chunk_grid,
                chunk_key_encoding=V2ChunkKeyEncoding(separator=v2.dimension_separator),
                fill_value=fill,
                codecs=[*array_array, array_bytes, *bytes_bytes],
                attributes=attrs,
                dimension_names=dims,
                storage_transformers=None,
            )
            buffers = meta.to_buffer_dict(default_buffer_prototype())
    except Exception as exc:
        raise MetadataError(_reason(exc)) from None
    return buffers["zarr.json"].to_bytes()


def _codecs(v2: Any) -> tuple[list[Any], Any, list[Any]]:
    """(array-to-array codecs, the array-to-bytes codec, bytes-to-bytes codecs) decoding
    what ``v2``'s filters and compressor encoded, in the same order."""
    from zarr.abc.codec import ArrayArrayCodec, ArrayBytesCodec, BytesBytesCodec
    from zarr.codecs.bytes import BytesCodec
    from zarr.codecs.transpose import TransposeCodec
    from zarr.core.dtype.common import HasEndianness

    array_array: list[Any] = []
    if v2.order == "F" and len(v2.shape) > 1:
        array_array.append(TransposeCodec(order=list(range(len(v2.shape) - 1, -1, -1))))
    array_bytes: Any = None
    bytes_bytes: list[Any] = []
    steps = [*(v2.filters or ()), *([v2.compressor] if v2.compressor is not None else [])]
    for step in steps:
        codec = _v3_codec(step, v2.dtype)
        name = step.codec_id
        if isinstance(codec, ArrayBytesCodec):
            if array_bytes is not None or bytes_bytes:
                raise MetadataError(f"filter {name!r} must come first in the chain")
            array_bytes = codec
        elif isinstance(codec, ArrayArrayCodec):
            if array_bytes is not None or bytes_bytes:
                raise MetadataError(
                    f"filter {name!r} works on arrays but follows a filter that works on "
                    "bytes; Zarr v3 cannot express that order"
                )
            array_array.append(codec)
        elif isinstance(codec, BytesBytesCodec):
            bytes_bytes.append(codec)
        else:  # pragma: no cover - every zarr codec is one of the three
            raise MetadataError(f"codec {name!r} is of no known kind")
    if array_bytes is None:
        endian = v2.dtype.endianness if isinstance(v2.dtype, HasEndianness) else None
        if v2.dtype.to_native_dtype().itemsize <= 1:
            endian = None
        array_bytes = BytesCodec(endian=endian)
    return array_array, array_bytes, bytes_bytes


def _v3_codec(codec: Any, dtype: Any) -> Any:
    """The Zarr v3 codec decoding what the numcodecs ``codec`` encoded."""
    name = codec.codec_id
    config = codec.get_config()
    native = _NATIVE.get(name)
    if name == "crc32c" and config.get("location", "end") != "end":
        native = None  # a checksum at the start: only numcodecs' own codec reads it
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numcodecs.* codecs warn they are not in the spec
            if native is not None:
                return native(config, dtype)
            from zarr.registry import get_codec_class

            try:
                cls = get_codec_class(f"numcodecs.{name}")
            except KeyError:
                raise MetadataError(
                    f"codec {name!r} has no Zarr v3 equivalent in zarr or numcodecs"
                ) from None
            config.pop("id", None)
            return cls.from_dict({"name": f"numcodecs.{name}", "configuration": config})
    except MetadataError:
        raise
    except Exception as exc:
        raise MetadataError(f"codec {name!r}: {_reason(exc)}") from None


def _gzip(config: dict[str, Any], dtype: Any) -> Any:
    from zarr.codecs.gzip import GzipCodec

    return GzipCodec(level=config.get("level", 1))


def _zstd(config: dict[str, Any], dtype: Any) -> Any:
    from zarr.codecs.zstd import ZstdCodec

    return ZstdCodec(level=config.get("level", 0), checksum=bool(config.get("checksum", False)))


def _blosc(config: dict[str, Any], dtype: Any) -> Any:
    from zarr.codecs.blosc import BloscCodec, BloscShuffle

    itemsize = dtype.to_native_dtype().itemsize
    shuffle = config.get("shuffle", 1)
    if shuffle == -1:  # numcodecs' AUTOSHUFFLE: bit shuffle for 1-byte items, else byte shuffle
        shuffle = 2 if itemsize == 1 else 1
    return BloscCodec(
        typesize=itemsize,
        cname=config.get("cname", "lz4"),
        clevel=config.get("clevel", 5),
        shuffle=BloscShuffle.from_int(shuffle),
        blocksize=config.get("blocksize", 0),
    )


def _crc32c(config: dict[str, Any], dtype: Any) -> Any:
    from zarr.codecs.crc32c_ import Crc32cCodec

    return Crc32cCodec()


def _vlen(config: dict[str, Any], dtype: Any) -> Any:
    from zarr.codecs.vlen_utf8 import VLenBytesCodec, VLenUTF8Codec

    return VLenUTF8Codec() if config["id"] == "vlen-utf8" else VLenBytesCodec()


_NATIVE: dict[str, Callable[[dict[str, Any], Any], Any]] = {
    "gzip": _gzip,
    "zstd": _zstd,
    "blosc": _blosc,
    "crc32c": _crc32c,
    "vlen-utf8": _vlen,
    "vlen-bytes": _vlen,
}
"""v2 codec ids with a zarr v3 codec of the same meaning (crc32c only with its checksum at
the end, numcodecs' default and Zarr v3's place)."""


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
