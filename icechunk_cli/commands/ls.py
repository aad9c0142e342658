"""``ick ls [REF] [PATH]``: the groups and arrays of a snapshot."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from icechunk_cli import addressing
from icechunk_cli.params import (
    JsonOpt,
    NoColorOpt,
    RepoOpt,
    StorageOptionOpt,
    UnsafeWritesOpt,
    complete_refs,
)
from icechunk_cli.render import Cell, Column, Output, chunk_grid_size

__all__ = ["ls", "split_ref_and_path"]


def split_ref_and_path(first: str | None, second: str | None) -> tuple[str | None, str]:
    """``ick ls /a`` lists path /a of main; ``ick ls v1 a`` lists /a of v1.

    Ref names cannot contain '/', so a first argument starting with '/' is a path.
    """
    if first is not None and first.startswith("/"):
        if second is not None:
            raise typer.BadParameter(f"expected REF then PATH, got two paths: {first} {second}")
        return None, first
    path = second or "/"
    return first, path if path.startswith("/") else "/" + path


def ls(
    ref: Annotated[
        str | None,
        typer.Argument(
            metavar="REF",
            help="Revision to list (default: main). An argument starting with '/' is PATH.",
            autocompletion=complete_refs,
            show_default=False,
        ),
    ] = None,
    path: Annotated[
        str | None,
        typer.Argument(metavar="PATH", help="Group to list (default: /).", show_default=False),
    ] = None,
    long: Annotated[
        bool,
        typer.Option(
            "--long",
            "-l",
            help="Also count the chunks written, their bytes, and how many are virtual.",
        ),
    ] = False,
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="List every descendant, not only children.")
    ] = False,
    repo: RepoOpt = None,
    json: JsonOpt = False,
    no_color: NoColorOpt = False,
    storage_option: StorageOptionOpt = None,
    unsafe_writes: UnsafeWritesOpt = False,
) -> None:
    """List groups and arrays.

    Lists the children of PATH (every descendant with -r) with the shape, dtype and chunk
    shape of each array; -l adds the chunks written and their size (virtual chunks included),
    and, when any array has virtual chunks, how many of its chunks are virtual. --json
    counts native, inline and virtual chunks apart.
    """
    out = Output(json=json, no_color=no_color)
    rev, where = split_ref_and_path(ref, path)
    repository = addressing.open_repository(repo)
    snapshot_id = addressing.resolve(repository, rev)
    session = repository.readonly_session(snapshot_id=snapshot_id)
    nodes = session.list_nodes(where, recursive=recursive, stats=long)
    if not nodes and where != "/":
        # Like ls(1) on a file: an array path lists the array itself.
        parent = where.rsplit("/", 1)[0] or "/"
        siblings = session.list_nodes(parent, stats=long)
        nodes = [n for n in siblings if n.path == where and n.kind == "array"]
    if out.json:
        out.emit(
            {"snapshot_id": snapshot_id, "path": where, "nodes": [_node_doc(n) for n in nodes]}
        )
        return
    columns = [
        Column("path", shrink=True),
        Column("shape"),
        Column("dtype", shrink=True),
        Column("chunks"),
    ]
    # Virtual chunks get their own column only where there are some (most repositories hold
    # none): how many of the chunks written are byte ranges of files outside the repository.
    virtual = long and any(n.virtual_chunks for n in nodes)
    if long:
        columns += [Column("written", numeric=True), Column("bytes", numeric=True)]
    if virtual:
        columns += [Column("virtual", numeric=True)]
    rows: list[list[Cell]] = []
    for node in nodes:
        if node.kind == "group":
            row: list[Cell] = [(node.path.rstrip("/") + "/", "group"), "", "", ""]
            if long:
                row += ["", ""]
            if virtual:
                row += [""]
        else:
            shape, chunks = out.shape(node.shape), out.shape(node.chunk_shape)
            row = [node.path, shape, node.dtype_name or "-", chunks]
            if long:
                total = chunk_grid_size(node.shape, node.chunk_shape)
                written = "-" if node.chunks_written is None else str(node.chunks_written)
                if out.terminal and total is not None and node.chunks_written is not None:
                    written = f"{written}/{total}"
                row += [written, out.size(node.bytes_written)]
            if virtual:
                row += [str(node.virtual_chunks or 0)]
        rows.append(row)
    if not rows:
        out.note(f"no groups or arrays under {where}")
        return
    out.table(columns, rows)


def _node_doc(node: Any) -> dict[str, Any]:
    return {
        "path": node.path,
        "kind": node.kind,
        "shape": list(node.shape) if node.shape is not None else None,
        "dtype": node.dtype,
        "chunk_shape": list(node.chunk_shape) if node.chunk_shape is not None else None,
        "attributes": node.attributes,
        "chunks_written": node.chunks_written,
        "bytes_written": node.bytes_written,
        "native_chunks": node.native_chunks,
        "inline_chunks": node.inline_chunks,
        "virtual_chunks": node.virtual_chunks,
        "virtual_bytes": node.virtual_bytes,
    }
