"""``import_kerchunk``: bring a kerchunk or VirtualiZarr reference set into a session.

Every key of the reference set lands below ``group``: Zarr v2 metadata converted to Zarr v3
(``_v2meta``), ``zarr.json`` documents as they are, inline data as ordinary chunks, and byte
range references as virtual chunks (one ``set_virtual_refs`` call per array). The whole set
is read and checked first (metadata, every reference, every location against the declared
containers), so a bad set changes nothing. Nothing is committed: the caller commits, as
after ``import_zarr``.

Locations are URLs: a bare path, or a ``file:`` URL without ``//``, becomes ``file:///`` of
its absolute path, a relative path being taken from the reference file's directory (the
current directory for a dict). A whole-object reference (``[url]``) needs the object's size,
which is read for local files only.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from icechunk_lib import _sync
from icechunk_lib.errors import (
    InvalidImportSourceError,
    InvalidNameError,
    InvalidReferencesError,
    InvalidVirtualLocationError,
    NodeNotFoundError,
    ReadOnlySessionError,
    UndeclaredContainersError,
    VirtualContainerNotFoundError,
)
from icechunk_lib.format.containers import split_url
from icechunk_lib.names import validate_node_path
from icechunk_lib.ops.source_meta import check_source_meta
from icechunk_lib.storage.url import file_url_path
from icechunk_lib.virtual._refs import KerchunkRefs, RefSet, load_refs
from icechunk_lib.virtual._v2meta import MetadataError, array_v3, group_v3
from icechunk_lib.virtual.access import VirtualAccess
from icechunk_lib.virtual.resolver import VirtualResolver
from icechunk_lib.virtual.spec import VirtualChunkSpec, updated_at_seconds
from icechunk_lib.zarr_keys import META_KEY, ArrayInfo, Coords, parse_array_meta

if TYPE_CHECKING:
    from icechunk_lib.ops.tree import NodeInfo
    from icechunk_lib.session import Session

__all__ = ["KerchunkImportSummary", "import_kerchunk", "import_kerchunk_async"]

ProgressCallback = Callable[[str, int, int], None]
"""``progress(phase, done, total)``, as ``import_zarr`` calls it."""

_V2_DOCS = (".zgroup", ".zarray", ".zattrs")
_SKIPPED = (".zmetadata",)  # consolidated copies of the documents the set holds anyway
_GROUP_META = b'{"zarr_format":3,"node_type":"group","attributes":{}}'


@dataclass
class KerchunkImportSummary:
    """What ``import_kerchunk`` wrote into the session."""

    arrays: int = 0
    groups: int = 0
    """Groups written from the reference set, and missing parents created."""
    virtual_chunks: int = 0
    inline_chunks: int = 0
    """Chunks whose bytes the reference set held, written as ordinary chunks."""
    objects: int = 0
    """Distinct source objects the virtual chunks are in."""
    paths: list[str] = field(default_factory=list)
    """The arrays written, as node paths."""

    def as_dict(self) -> dict[str, int]:
        """The counts by name (for ``--json`` output)."""
        return {
            "arrays": self.arrays,
            "groups": self.groups,
            "virtual_chunks": self.virtual_chunks,
            "inline_chunks": self.inline_chunks,
            "objects": self.objects,
        }


def import_kerchunk(
    session: Session,
    refs: KerchunkRefs,
    *,
    group: str = "/",
    last_updated_at: dt.datetime | None = None,
    progress: ProgressCallback | None = None,
) -> KerchunkImportSummary:
    """Write a kerchunk reference set into ``session`` below ``group``; see the async twin."""
    return _sync.run(
        import_kerchunk_async(
            session, refs, group=group, last_updated_at=last_updated_at, progress=progress
        )
    )


async def import_kerchunk_async(
    session: Session,
    refs: KerchunkRefs,
    *,
    group: str = "/",
    last_updated_at: dt.datetime | None = None,
    progress: ProgressCallback | None = None,
) -> KerchunkImportSummary:
    """Write a kerchunk reference set into ``session`` below ``group`` (created if needed).

    ``refs`` is a dict (kerchunk's version 0 or 1), or the path of a JSON reference file
    (``.json``, ``.json.gz``, ``.json.zst``) or of a parquet reference directory. An array
    of the set replaces any array at its path; a group's attributes replace an existing
    group's, keeping its other children. ``last_updated_at`` is recorded as the checksum of
    every virtual chunk: reads then refuse sources modified after it. The session is not
    committed.

    Raises:
        ReadOnlySessionError: the session cannot write.
        ImportSourceNotFoundError: no reference file at the path.
        InvalidReferencesError: malformed references or metadata (naming the key).
        UndeclaredContainersError: locations outside every declared container (listing
            their prefixes); nothing is written.
        InvalidNameError: a node path the tree cannot hold (inside an existing array).
    """
    if session.read_only:
        raise ReadOnlySessionError("import kerchunk references")
    dest = validate_node_path(group.rstrip("/") or "/")
    checksum = None
    if last_updated_at is not None:
        updated_at_seconds(last_updated_at, "every reference")  # checked up front
        checksum = last_updated_at
    loaded = load_refs(refs)
    plan = _Planner(loaded, dest, checksum).plan(session.config.virtual_chunk_containers)
    await _check_tree(session, plan)
    return await _write(session, plan, progress)


# --- planning: read and check everything, write nothing -------------------------------------


@dataclass
class _Array:
    path: str
    meta: bytes
    info: ArrayInfo
    inline: list[tuple[str, bytes]] = field(default_factory=list)
    """(store key, bytes) of the chunks the set holds inline."""
    virtual: list[VirtualChunkSpec] = field(default_factory=list)


@dataclass
class _Plan:
    groups: dict[str, bytes]
    """Node path -> ``zarr.json`` of the groups the set describes."""
    parents: list[str]
    """Groups to create if the session lacks them (ancestors of ``dest`` and of nodes)."""
    arrays: dict[str, _Array]
    objects: int


class _Planner:
    """One reference set turned into nodes and chunks, every check done."""

    def __init__(self, loaded: RefSet, dest: str, checksum: dt.datetime | None) -> None:
        self.refs = loaded.refs
        self.name = loaded.name
        self.base_dir = loaded.base_dir
        self.dest = dest
        self.checksum = checksum
        self.locations: dict[str, str] = {}  # url as written -> normalised location
        self.sizes: dict[str, int] = {}  # local whole-object sizes

    def fail(self, key: str, reason: str) -> InvalidReferencesError:
        return InvalidReferencesError(self.name, f"key {key!r}: {reason}", key=key)

    def path_of(self, prefix: str) -> str:
        """Node path of the node whose keys start with ``prefix`` (``""``, ``a/b``)."""
        full = prefix if self.dest == "/" else f"{self.dest[1:]}/{prefix}" if prefix else ""
        path = "/" + full if full else self.dest
        try:
            return validate_node_path(path)
        except InvalidNameError as exc:
            raise self.fail(prefix or "/", str(exc)) from None

    def plan(self, containers: Any) -> _Plan:
        docs: dict[str, dict[str, Any]] = {}
        chunks: list[tuple[str, Any]] = []
        for key, value in self.refs.items():
            if not isinstance(key, str) or not key or key.startswith("/"):
                raise self.fail(str(key), "keys are relative paths like 'x/0.0'")
            prefix, _, leaf = key.rpartition("/")
            if leaf in _SKIPPED:
                continue
            if leaf in _V2_DOCS or leaf == META_KEY:
                docs.setdefault(prefix, {})[leaf] = self.document(key, value)
            else:
                chunks.append((key, value))
        groups: dict[str, bytes] = {}
        arrays: dict[str, _Array] = {}
        by_prefix: dict[str, _Array] = {}
        for prefix in sorted(docs):
            path = self.path_of(prefix)
            meta = self.node_meta(prefix, docs[prefix])
            info = parse_array_meta(meta)
            if info is None:
                groups[path] = meta
            else:
                arrays[path] = by_prefix[prefix] = _Array(path, meta, info)
        for path in arrays:
            above = [p for p in arrays if p != path and path.startswith(p.rstrip("/") + "/")]
            if above:
                raise self.fail(path, f"it is inside array {above[0]}; only groups have children")
        self.add_chunks(chunks, by_prefix)
        undeclared = self.undeclared(containers)
        if undeclared:
            first, prefixes = undeclared
            declared = sorted(containers or {})
            raise UndeclaredContainersError(prefixes, first, declared)
        wanted = {a for path in [self.dest, *groups, *arrays] for a in _ancestors(path)}
        parents = sorted((wanted | {self.dest}) - set(groups) - set(arrays))
        return _Plan(groups, parents, arrays, len(set(self.locations.values())))

    def document(self, key: str, value: Any) -> dict[str, Any]:
        """A metadata document as a dict, from JSON text, bytes or a dict."""
        if isinstance(value, str) and value.startswith("base64:"):
            value = self.inline(key, value)
        if isinstance(value, bytes | str):
            try:
                value = json.loads(value)
            except (ValueError, UnicodeDecodeError) as exc:
                raise self.fail(key, f"not a JSON document ({exc})") from None
        if not isinstance(value, dict):
            raise self.fail(key, f"a metadata document is a JSON object, not {value!r:.80}")
        return value

    def node_meta(self, prefix: str, docs: dict[str, dict[str, Any]]) -> bytes:
        """``zarr.json`` bytes of the node at ``prefix`` from its documents."""
        where = f"{prefix}/" if prefix else ""
        kinds = [d for d in (META_KEY, ".zarray", ".zgroup") if d in docs]
        if len(kinds) > 1:  # which one describes the node would be a guess
            raise self.fail(
                where + kinds[1], f"the node has both {kinds[0]} and {kinds[1]}; keep one"
            )
        if META_KEY in docs:
            key = where + META_KEY
            return self.checked(key, json.dumps(docs[META_KEY]).encode())
        attrs = docs.get(".zattrs", {})
        if ".zarray" in docs:
            try:
                meta = array_v3(docs[".zarray"], attrs)
            except MetadataError as exc:
                raise self.fail(where + ".zarray", str(exc)) from None
            # The checks a zarr.json gets: zarr converts some metadata it cannot open.
            return self.checked(where + ".zarray", meta)
        try:
            return group_v3(attrs)
        except Exception as exc:
            raise self.fail(where + ".zattrs", f"attributes zarr cannot store ({exc})") from None

    def checked(self, key: str, meta: bytes) -> bytes:
        """``meta`` if zarr opens it and the engine can index it, else an error naming
        ``key`` and the field at fault."""
        try:
            return check_source_meta(self.name, key, meta)
        except InvalidImportSourceError as exc:
            reason = str(exc).removeprefix(f"cannot import {self.name}: ")
            raise InvalidReferencesError(self.name, reason, key=key, field=exc.field) from None

    def add_chunks(self, chunks: list[tuple[str, Any]], arrays: dict[str, _Array]) -> None:
        """File every chunk reference under its array, checked."""
        for key, value in chunks:
            array, suffix = _owner(key, arrays)
            if array is None:
                raise self.fail(key, "no .zarray or zarr.json above it makes it a chunk key")
            coords = array.info.parse_chunk_key(suffix)
            if coords is None:
                raise self.fail(
                    key, f"not a chunk of array {array.path} ({array.info.describe_grid()})"
                )
            if isinstance(value, list):
                array.virtual.append(self.virtual(key, value, coords))
            else:
                array.inline.append((array.info.chunk_key(coords), self.inline(key, value)))

    def inline(self, key: str, value: Any) -> bytes:
        if isinstance(value, bytes):
            return value
        if not isinstance(value, str):
            raise self.fail(
                key,
                f"a reference is text, base64:..., [url] or [url, offset, length], "
                f"not {value!r:.80}",
            )
        if value.startswith("base64:"):
            try:
                return base64.b64decode(value[7:], validate=True)
            except (binascii.Error, ValueError):
                raise self.fail(key, "its base64: data is not valid base64") from None
        return value.encode("utf-8", "surrogatepass")

    def virtual(self, key: str, value: list[Any], coords: Coords) -> VirtualChunkSpec:
        if len(value) not in (1, 3) or not isinstance(value[0], str) or not value[0]:
            raise self.fail(
                key, f"a reference is [url] or [url, offset, length], not {value!r:.80}"
            )
        location = self.location(key, value[0])
        if len(value) == 1:
            offset, length = 0, self.whole_size(key, location)
        else:
            offset, length = value[1], value[2]
            for what, n in (("offset", offset), ("length", length)):
                if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                    raise self.fail(key, f"its {what} {n!r} is not a non-negative integer")
            if offset + length >= 2**64:
                raise self.fail(key, "its byte range ends past byte 2**64-1")
        if length == 0:  # no codec decodes a chunk from no bytes
            raise self.fail(key, f"its length is 0: no chunk is stored in 0 bytes of {location!r}")
        return VirtualChunkSpec(
            list(coords), location, offset, length, last_updated_at_checksum=self.checksum
        )

    def location(self, key: str, url: str) -> str:
        """The URL of a reference as a location: local paths as absolute ``file:///``."""
        found = self.locations.get(url)
        if found is not None:
            return found
        parts = split_url(url)
        if parts is None or len(parts[0]) == 1:  # no scheme, or a Windows drive letter
            found = _file_location(self.base_dir / url)
        elif parts[0].lower() == "file" and parts[1] in (None, "localhost"):
            path = parts[2]
            found = _file_location(self.base_dir / path, escaped=True) if path else url
        else:
            found = url
        self.locations[url] = found
        return found

    def whole_size(self, key: str, location: str) -> int:
        if location in self.sizes:
            return self.sizes[location]
        if not location.startswith("file:///"):
            raise self.fail(
                key,
                f"a whole-object reference [{location!r}] needs the object's size, which ick "
                "reads only for local files; write it as [url, 0, size]",
            )
        try:
            size = Path(file_url_path(location)).stat().st_size
        except OSError as exc:
            raise self.fail(key, f"cannot read the size of {location!r}: {exc.strerror}") from None
        self.sizes[location] = size
        return size

    def undeclared(self, containers: Any) -> tuple[str, list[str]] | None:
        """(first location, undeclared directory prefixes) of locations no container holds."""
        resolver = VirtualResolver(containers, VirtualAccess())
        first = ""
        prefixes: set[str] = set()
        for url, location in self.locations.items():
            try:
                resolver.container(location)
            except VirtualContainerNotFoundError:
                first = first or location
                prefixes.add(location.rsplit("/", 1)[0] + "/")
            except InvalidVirtualLocationError as exc:
                key = next(
                    (k for k, v in self.refs.items() if isinstance(v, list) and v and v[0] == url),
                    url,
                )
                raise self.fail(key, str(exc)) from None
        return (first, sorted(prefixes)) if prefixes else None


def _owner(key: str, arrays: dict[str, _Array]) -> tuple[_Array | None, str]:
    """The array whose chunk ``key`` may be, and the key below it."""
    prefix = key
    while prefix:
        prefix = prefix.rpartition("/")[0]
        array = arrays.get(prefix)
        if array is not None:
            return array, key[len(prefix) + 1 if prefix else 0 :]
    return None, key


_ESCAPES = {"%": "%25", "?": "%3F", "#": "%23", "\\": "%5C"}


def _file_location(path: Path | str, *, escaped: bool = False) -> str:
    """``file:///`` URL of a local path, made absolute and normal (no ``..``). Only what a
    URL path cannot hold as is gets escaped (``% ? # \\``): Unicode and spaces stay, as
    locations may hold them; an ``escaped`` path (from a URL) is left as written."""
    absolute = os.path.normpath(Path(path).absolute())  # not resolve(): symlinks stay
    if not escaped:
        absolute = "".join(_ESCAPES.get(c, c) for c in absolute)
    return "file://" + absolute


def _ancestors(path: str) -> list[str]:
    """Proper ancestors of a node path, root first."""
    if path == "/":
        return []
    parts = path[1:].split("/")
    return ["/"] + ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]


# --- checking the session, then writing --------------------------------------------------------


async def _nodes(session: Session) -> dict[str, NodeInfo]:
    """The session's nodes by path (none in a repository with nothing in it)."""
    try:
        return {n.path: n for n in await session.list_nodes_async("/", recursive=True)}
    except NodeNotFoundError:
        return {}


async def _check_tree(session: Session, plan: _Plan) -> None:
    """Refuse, before writing, nodes the session's tree cannot hold."""
    nodes = await _nodes(session)
    for path in [*plan.parents, *plan.groups, *plan.arrays]:
        for ancestor in _ancestors(path):
            node = nodes.get(ancestor)
            if node is not None and node.kind == "array" and ancestor not in plan.groups:
                raise InvalidNameError("node", path, f"it is inside array {ancestor}")
    for path in plan.parents:
        node = nodes.get(path)
        if node is not None and node.kind == "array":
            raise InvalidNameError("node", path, "it is an array; the import needs a group there")
    for path in plan.arrays:
        below = "/" if path == "/" else path + "/"
        child = next((p for p in nodes if p != path and p.startswith(below)), None)
        if child is not None:
            raise InvalidNameError(
                "node", path, f"the session has {child} below it, and an array has no children"
            )


async def _write(
    session: Session, plan: _Plan, progress: ProgressCallback | None
) -> KerchunkImportSummary:
    from zarr.core.buffer import default_buffer_prototype

    store = session.store
    proto = default_buffer_prototype()
    summary = KerchunkImportSummary(objects=plan.objects)

    def key(path: str, leaf: str) -> str:
        return leaf if path == "/" else f"{path[1:]}/{leaf}"

    existing = await _nodes(session)
    for path in plan.parents:
        # Not ``existing``: it lists implicit groups too, which have no metadata of their own.
        if not await store.exists(key(path, META_KEY)):
            await store.set(key(path, META_KEY), proto.buffer.from_bytes(_GROUP_META))
            summary.groups += 1
    for path in sorted(plan.groups):
        await store.set(key(path, META_KEY), proto.buffer.from_bytes(plan.groups[path]))
        summary.groups += 1
    total = sum(len(a.inline) + len(a.virtual) for a in plan.arrays.values())
    done = 0
    for path in sorted(plan.arrays):
        array = plan.arrays[path]
        old = existing.get(path)
        if old is not None and old.kind == "array":
            await store.delete_dir(key(path, "").rstrip("/"))  # replaced, old chunks and all
        await store.set(key(path, META_KEY), proto.buffer.from_bytes(array.meta))
        for chunk_key, data in array.inline:
            await store.set(key(path, chunk_key), proto.buffer.from_bytes(data))
        if array.virtual:
            await store.set_virtual_refs_async(path, array.virtual, validate_containers=False)
        summary.arrays += 1
        summary.paths.append(path)
        summary.inline_chunks += len(array.inline)
        summary.virtual_chunks += len(array.virtual)
        done += len(array.inline) + len(array.virtual)
        if progress is not None:
            progress("chunks", done, total)
    return summary
