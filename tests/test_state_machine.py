"""Stateful tests: sessions driven through zarr against a plain numpy model, with time travel.

``SessionMachine`` creates groups and arrays, writes slices, sets attributes, resizes, deletes
and moves nodes, commits, discards, and opens new sessions; after every step the writable
session must read back exactly the model, and any committed snapshot must read back exactly the
model as it was at that commit. zarr's own store state machines run against ``IcechunkStore``
too.
"""

from __future__ import annotations

import copy
import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, note, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import collect_aiterator, sync
from zarr.testing.stateful import ZarrHierarchyStateMachine, ZarrStoreStateMachine

import icechunk_lib as ic
from icechunk_lib.store import IcechunkStore

SETTINGS = settings(
    max_examples=30,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

NAMES = ["a", "b", "c", "d"]
DTYPES = ["int32", "float64"]
values = st.integers(-2, 2)  # small, so writes often equal the fill value
SIZES = st.sampled_from([1, 2, 3, 4, 5, 0])  # empty dimensions are rarer than in integers(0, 5)


@dataclass
class Node:
    """One group (``data is None``) or array of the model."""

    attrs: dict[str, Any] = field(default_factory=dict)
    data: np.ndarray[Any, Any] | None = None
    fill: int = 0
    shrunk: bool = False
    """zarr keeps stale values past the new edge of a shrunk array's last chunk, and growing
    the array again would show them: the model lets a shrunk array only shrink further."""


Model = dict[str, Node]  # zarr path ("" is the root) -> node


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def _observe(store: IcechunkStore) -> dict[str, Any]:
    """Everything a reader sees through ``store``: path -> (attrs, shape, dtype, fill, data)."""
    out: dict[str, Any] = {}
    for key in collect_aiterator(store.list()):
        if key != "zarr.json" and not key.endswith("/zarr.json"):
            continue
        path = key[: -len("zarr.json")].rstrip("/")
        raw = sync(store.get(key, prototype=default_buffer_prototype()))
        assert raw is not None
        if json.loads(raw.to_bytes())["node_type"] == "group":
            out[path] = (dict(zarr.open_group(store, path=path, mode="r").attrs),)
        else:
            arr = zarr.open_array(store, path=path, mode="r")
            data = arr[...]
            out[path] = (dict(arr.attrs), arr.shape, str(arr.dtype), int(arr.fill_value), data)
    return out


def _expected(model: Model) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, node in model.items():
        if node.data is None:
            out[path] = (node.attrs,)
        else:
            d = node.data
            out[path] = (node.attrs, d.shape, str(d.dtype), node.fill, d)
    return out


def _same(seen: dict[str, Any], model: Model) -> bool:
    want = _expected(model)
    if seen.keys() != want.keys():
        return False
    for path, got in seen.items():
        exp = want[path]
        # Groups are (attrs,); arrays are (attrs, shape, dtype, fill, data).
        if len(got) != len(exp) or got[:4] != exp[:4]:
            return False
        if len(got) == 5 and not np.array_equal(got[4], exp[4]):
            return False
    return True


def _assert_reads(store: IcechunkStore, model: Model, what: str) -> None:
    seen = _observe(store)
    assert _same(seen, model), (what, seen, _expected(model))


class SessionMachine(RuleBasedStateMachine):
    """A writable session on ``main`` checked against a model, plus every committed version."""

    make_storage: Callable[[], ic.Storage] = staticmethod(ic.in_memory_storage)
    chunk_deletion = False
    """Shrink arrays and let zarr delete chunks that hold only the fill value."""

    def __init__(self) -> None:
        super().__init__()
        self.storage = self.make_storage()
        self.repo = ic.Repository.create(self.storage)
        self.session = self.repo.writable_session("main")
        self.model: Model = {}
        self.committed: list[tuple[str, Model]] = [(self.session.snapshot_id, {})]
        self.dirty = False
        self.tags = 0

    # --- helpers ---------------------------------------------------------------------------------

    @property
    def store(self) -> IcechunkStore:
        return self.session.store

    def groups(self) -> list[str]:
        return sorted(p for p, n in self.model.items() if n.data is None)

    def arrays(self) -> list[str]:
        return sorted(p for p, n in self.model.items() if n.data is not None)

    def _open(self, path: str) -> Any:
        if self.model[path].data is None:
            return zarr.open_group(self.store, path=path, mode="r+")
        return zarr.open_array(self.store, path=path, mode="r+")

    def _free_child(self, data: st.DataObject) -> str:
        parent = data.draw(st.sampled_from(self.groups()), label="parent")
        free = [n for n in NAMES if _join(parent, n) not in self.model]
        if not free:
            return ""
        return _join(parent, data.draw(st.sampled_from(free), label="name"))

    def _drop(self, path: str) -> None:
        for p in [p for p in self.model if p == path or p.startswith(path + "/")]:
            del self.model[p]

    # --- structure -------------------------------------------------------------------------------

    @initialize(attrs=st.dictionaries(st.sampled_from("xyz"), values, max_size=2))
    def root(self, attrs: dict[str, int]) -> None:
        zarr.create_group(self.store, attributes=attrs)
        self.model[""] = Node(attrs=dict(attrs))
        self.dirty = True
        self.commit("root")

    @precondition(lambda self: "" not in self.model)
    @rule()
    def recreate_root(self) -> None:
        zarr.create_group(self.store)
        self.model[""] = Node()
        self.dirty = True

    @precondition(lambda self: self.groups())
    @rule(data=st.data())
    def add_group(self, data: st.DataObject) -> None:
        path = self._free_child(data)
        if not path:
            return
        zarr.create_group(self.store, path=path)
        self.model[path] = Node()
        self.dirty = True

    @precondition(lambda self: self.groups())
    @rule(
        data=st.data(),
        shape=st.lists(SIZES, max_size=3).map(tuple),
        dtype=st.sampled_from(DTYPES),
        fill=values,
    )
    def add_array(self, data: st.DataObject, shape: tuple[int, ...], dtype: str, fill: int) -> None:
        path = self._free_child(data)
        if not path:
            return
        chunks = tuple(data.draw(st.integers(1, 3), label="chunk") for _ in shape)
        zarr.create_array(
            self.store,
            name=path,
            shape=shape,
            chunks=chunks,
            dtype=dtype,
            fill_value=fill,
            compressors=None,
        )
        self.model[path] = Node(data=np.full(shape, fill, dtype=dtype), fill=fill)
        self.dirty = True
        if data.draw(st.sampled_from([True, True, True, False]), label="write it"):
            self._write(data, path, tuple(slice(0, n) for n in shape))

    @precondition(lambda self: len(self.model) > 1)
    @rule(data=st.data(), use_del=st.booleans())
    def delete_node(self, data: st.DataObject, use_del: bool) -> None:
        path = data.draw(st.sampled_from(sorted(p for p in self.model if p)), label="path")
        if use_del:
            parent, _, name = path.rpartition("/")
            del zarr.open_group(self.store, path=parent, mode="r+")[name]
        else:
            sync(self.store.delete_dir(path))
        self._drop(path)
        self.dirty = True

    @precondition(lambda self: len(self.model) > 1)
    @rule(data=st.data(), name=st.sampled_from(NAMES))
    def move(self, data: st.DataObject, name: str) -> None:
        pool = sorted(p for p in self.model if p)
        prefer_arrays = data.draw(st.booleans(), label="move an array")
        if prefer_arrays and self.arrays():
            pool = self.arrays()  # arrays carry chunks, so moving them risks the most
        src = data.draw(st.sampled_from(pool), label="source")
        parents = [g for g in self.groups() if g != src and not g.startswith(src + "/")]
        parent = data.draw(st.sampled_from(parents), label="to group")
        dst = _join(parent, name)
        if dst in self.model:
            return
        self.session.move("/" + src, "/" + dst)
        for p in sorted(p for p in self.model if p == src or p.startswith(src + "/")):
            self.model[dst + p[len(src) :]] = self.model.pop(p)
        self.dirty = True

    # --- content ---------------------------------------------------------------------------------

    @precondition(lambda self: self.model)
    @rule(data=st.data(), key=st.sampled_from("xyz"), value=values | st.text(max_size=3))
    def set_attribute(self, data: st.DataObject, key: str, value: Any) -> None:
        path = data.draw(st.sampled_from(sorted(self.model)), label="path")
        self._open(path).attrs[key] = value
        self.model[path].attrs[key] = value
        self.dirty = True

    @precondition(lambda self: self.arrays())
    @rule(data=st.data())
    def write(self, data: st.DataObject) -> None:
        path = data.draw(st.sampled_from(self.arrays()), label="array")
        shape = self.model[path].data.shape  # type: ignore[union-attr]
        index = []
        for n in shape:
            start = data.draw(st.integers(0, n), label="start")
            index.append(slice(start, data.draw(st.integers(start, n), label="stop")))
        self._write(data, path, tuple(index))

    @precondition(lambda self: self.arrays())
    @rule(data=st.data())
    def write_fill_value(self, data: st.DataObject) -> None:
        """Overwrite a whole array with its fill value (zarr may then delete every chunk)."""
        path = data.draw(st.sampled_from(self.arrays()), label="array")
        node = self.model[path]
        assert node.data is not None
        zarr.open_array(self.store, path=path, mode="r+")[...] = node.fill
        node.data[...] = node.fill
        self.dirty = True

    def _write(self, data: st.DataObject, path: str, index: tuple[slice, ...]) -> None:
        node = self.model[path]
        assert node.data is not None
        target = node.data[index]
        new = np.array(
            data.draw(st.lists(values, min_size=target.size, max_size=target.size), label="values"),
            dtype=node.data.dtype,
        ).reshape(target.shape)
        zarr.open_array(self.store, path=path, mode="r+")[index] = new
        node.data[index] = new
        self.dirty = True

    @precondition(lambda self: any(self.model[p].data.ndim for p in self.arrays()))
    @rule(data=st.data())
    def resize(self, data: st.DataObject) -> None:
        path = data.draw(
            st.sampled_from([p for p in self.arrays() if self.model[p].data.ndim]),  # type: ignore[union-attr]
            label="array",
        )
        node = self.model[path]
        assert node.data is not None
        old = node.data.shape
        if not self.chunk_deletion:
            sizes = [st.integers(n, n + 3) for n in old]  # growing deletes no chunk
        elif node.shrunk:
            sizes = [st.integers(0, n) for n in old]
        else:
            sizes = [st.integers(0, n + 3) for n in old]
        shape = tuple(data.draw(size, label="size") for size in sizes)
        zarr.open_array(self.store, path=path, mode="r+").resize(shape)
        grown = np.full(shape, node.fill, dtype=node.data.dtype)
        overlap = tuple(slice(0, min(a, b)) for a, b in zip(shape, old, strict=True))
        grown[overlap] = node.data[overlap]
        node.data = grown
        node.shrunk = node.shrunk or any(a < b for a, b in zip(shape, old, strict=True))
        self.dirty = True

    # --- versions --------------------------------------------------------------------------------

    @rule(
        how=st.sampled_from(["commit", "commit", "commit", "discard", "reopen"]),
        message=st.text(max_size=10),
    )
    def end_session(self, how: str, message: str) -> None:
        """Commit (most often), discard the changes, or drop the session for a new one."""
        if how == "commit":
            self.commit(message)
            return
        if how == "discard":
            self.session.discard_changes()
            assert not self.session.has_uncommitted_changes
        else:
            self.session = self.repo.writable_session("main")
        self.model = copy.deepcopy(self.committed[-1][1])
        self.dirty = False

    def commit(self, message: str) -> None:
        parent = self.session.snapshot_id
        try:
            sid = self.session.commit(message)
        except ic.NoChangesToCommitError:
            # Only an edit that undid itself may leave nothing to commit.
            assert _same(_observe(self.store), self.committed[-1][1])
            assert self.repo.lookup_branch("main") == self.committed[-1][0]
            self.session = self.repo.writable_session("main")
            self.dirty = False
            return
        assert self.dirty, "committed although nothing was written"
        note(f"committed {sid}")
        assert self.session.read_only and self.session.snapshot_id == sid
        assert self.repo.lookup_branch("main") == sid
        info = self.repo.lookup_snapshot(sid)
        assert (info.parent_id, info.message) == (parent, message)
        _assert_reads(self.store, self.model, "the committed session")
        self.committed.append((sid, copy.deepcopy(self.model)))
        history = [s.id for s in self.repo.ancestry(branch="main")]
        assert history == [sid for sid, _ in reversed(self.committed)]
        self.session = self.repo.writable_session("main")
        self.dirty = False

    @rule(data=st.data(), how=st.sampled_from(["cached", "fresh", "tag"]))
    def time_travel(self, data: st.DataObject, how: str) -> None:
        sid, model = data.draw(st.sampled_from(self.committed), label="snapshot")
        if how == "tag":
            name = f"v{self.tags}"
            self.tags += 1
            self.repo.create_tag(name, sid)
            session = self.repo.readonly_session(tag=name)
        else:
            # A freshly opened repository has empty caches: every object comes from storage.
            repo = ic.Repository.open(self.storage) if how == "fresh" else self.repo
            session = repo.readonly_session(snapshot_id=sid)
        assert session.snapshot_id == sid
        _assert_reads(session.store, model, f"snapshot {sid} ({how})")

    @invariant()
    def session_reads_the_model(self) -> None:
        _assert_reads(self.store, self.model, "the writable session")


class ChunkDeletionMachine(SessionMachine):
    """Also shrinks arrays; run with zarr's default of deleting chunks of fill values only."""

    chunk_deletion = True


def _local_storages(root: Path) -> Callable[[], ic.Storage]:
    def make() -> ic.Storage:
        return ic.local_filesystem_storage(tempfile.mkdtemp(dir=root))

    return make


@pytest.fixture
def write_empty_chunks() -> Iterator[None]:
    # Every written chunk is stored, even one of fill values only, so zarr deletes no chunks.
    with zarr.config.set({"array.write_empty_chunks": True}):
        yield


@pytest.mark.usefixtures("write_empty_chunks")
def test_session_against_model_in_memory() -> None:
    run_state_machine_as_test(SessionMachine, settings=SETTINGS)


def test_session_against_model_on_local_disk(tmp_path: Path) -> None:
    machine = type("LocalSessionMachine", (ChunkDeletionMachine,), {})
    machine.make_storage = staticmethod(_local_storages(tmp_path))  # type: ignore[attr-defined]
    run_state_machine_as_test(machine, settings=settings(SETTINGS, max_examples=8))


def test_session_with_chunk_deletion_against_model() -> None:
    run_state_machine_as_test(ChunkDeletionMachine, settings=SETTINGS)


# --- what ChunkDeletionMachine found, as plain tests -------------------------------------------


@pytest.mark.parametrize("how", ["fill-values", "resize-to-zero", "delete-key"])
def test_commit_after_deleting_new_chunks(how: str) -> None:
    repo = ic.Repository.create(ic.in_memory_storage())
    session = repo.writable_session("main")
    zarr.create_group(session.store)
    arr = zarr.create_array(session.store, name="a", shape=(4,), chunks=(2,), dtype="i4")
    arr[:] = 1
    if how == "fill-values":
        arr[:] = 0  # zarr deletes chunks holding only the fill value
    elif how == "resize-to-zero":
        arr.resize((0,))
    else:
        sync(session.store.delete_dir("a/c"))
    # The array's chunk changes are all deletions and it has no committed chunks.
    sid = session.commit("deleted again")
    expected = np.zeros(0 if how == "resize-to-zero" else 4, dtype="i4")
    store = repo.readonly_session(snapshot_id=sid).store
    np.testing.assert_array_equal(zarr.open_array(store, path="a", mode="r")[:], expected)


@pytest.mark.parametrize("how", ["fill-values", "resize-to-zero", "delete-key"])
def test_commit_after_deleting_every_committed_chunk(how: str) -> None:
    repo = ic.Repository.create(ic.in_memory_storage())
    session = repo.writable_session("main")
    zarr.create_group(session.store)
    zarr.create_array(session.store, name="a", shape=(4,), chunks=(2,), dtype="i4")[:] = 1
    first = session.commit("data")
    session = repo.writable_session("main")
    arr = zarr.open_array(session.store, path="a", mode="r+")
    if how == "fill-values":
        arr[:] = 0
    elif how == "resize-to-zero":
        arr.resize((0,))
    else:
        sync(session.store.delete_dir("a/c"))
    second = session.commit("deleted")
    old = zarr.open_array(repo.readonly_session(snapshot_id=first).store, path="a", mode="r")
    new = zarr.open_array(repo.readonly_session(snapshot_id=second).store, path="a", mode="r")
    np.testing.assert_array_equal(old[:], [1, 1, 1, 1])
    np.testing.assert_array_equal(new[:], np.zeros(0 if how == "resize-to-zero" else 4))
    assert not [k for k in collect_aiterator(new.store.list()) if "/c/" in k]


# --- zarr's own state machines -------------------------------------------------------------------


def _icechunk_store() -> IcechunkStore:
    return ic.Repository.create(ic.in_memory_storage()).writable_session("main").store


def test_zarr_store_state_machine() -> None:
    machine = lambda: ZarrStoreStateMachine(_icechunk_store())  # noqa: E731
    run_state_machine_as_test(machine, settings=SETTINGS)  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore::zarr.errors.UnstableSpecificationWarning")
def test_zarr_hierarchy_state_machine() -> None:
    machine = lambda: ZarrHierarchyStateMachine(_icechunk_store())  # noqa: E731
    run_state_machine_as_test(machine, settings=SETTINGS)  # type: ignore[arg-type]
