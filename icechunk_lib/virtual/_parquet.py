"""Kerchunk references stored as parquet, as ``kerchunk.df.refs_to_dataframe`` and fsspec's
``LazyReferenceMapper`` write them, read back into the plain ``key -> reference`` form.

The layout: ``<root>/.zmetadata`` holds ``{"metadata": {key: document}, "record_size": N}``;
each array ``<field>`` has files ``<root>/<field>/refs.<i>.parq`` with columns ``path``,
``offset``, ``size`` and ``raw``, row ``j`` of file ``i`` being chunk ``i * N + j`` of the
array in C order. A row with ``raw`` holds the chunk inline; one with only ``path`` (offset
and size 0) references the whole object; one with neither is a missing chunk.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import json
import math
import re
from pathlib import Path
from typing import Any

from icechunk_lib.errors import ImportSourceError, InvalidReferencesError

__all__ = ["load_parquet_refs"]


def load_parquet_refs(root: Path, name: str) -> dict[str, Any]:
    """Every reference of the parquet reference directory ``root`` (``name`` in messages)."""
    read = _reader(name)
    try:
        zmeta = json.loads((root / ".zmetadata").read_bytes())
        metadata = zmeta["metadata"]
        record_size = int(zmeta["record_size"])
    except FileNotFoundError:
        raise InvalidReferencesError(
            name, "a parquet reference directory has a .zmetadata file; this one has none"
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidReferencesError(
            name, f"its .zmetadata is not a parquet reference index ({exc})", key=".zmetadata"
        ) from None
    if not isinstance(metadata, dict) or record_size <= 0:
        raise InvalidReferencesError(name, "its .zmetadata is malformed", key=".zmetadata")
    refs: dict[str, Any] = dict(metadata)
    for key, doc in metadata.items():
        if not key.endswith(".zarray") or not isinstance(doc, dict):
            continue
        field = key[: -len(".zarray")].rstrip("/")
        try:
            grid = [math.ceil(s / c) for s, c in zip(doc["shape"], doc["chunks"], strict=True)]
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            raise InvalidReferencesError(
                name, "its shape and chunks do not make a chunk grid", key=key
            ) from None
        sep = doc.get("dimension_separator") or "."
        _read_field(refs, root, field, grid, sep, record_size, read)
    return refs


def _read_field(
    refs: dict[str, Any],
    root: Path,
    field: str,
    grid: list[int],
    sep: str,
    record_size: int,
    read: Any,
) -> None:
    import numpy as np

    total = math.prod(grid)
    prefix = f"{field}/" if field else ""
    for record, path in _record_files(root / field, math.ceil(total / record_size)):
        columns = read(path)
        paths, raws = columns.get("path"), columns.get("raw")
        offsets, sizes = columns.get("offset"), columns.get("size")
        first = record * record_size
        rows = min(record_size, total - first, _rows(columns))
        for row in range(rows):
            index = np.unravel_index(first + row, grid) if grid else (0,)
            key = prefix + sep.join(str(int(i)) for i in index)
            raw = raws[row] if raws is not None else None
            if _present(raw):
                refs[key] = bytes(raw)  # type: ignore[arg-type]
                continue
            url = paths[row] if paths is not None else None
            if not _present(url):
                continue
            start = int(offsets[row]) if offsets is not None else 0
            size = int(sizes[row]) if sizes is not None else 0
            refs[key] = [str(url)] if start == size == 0 else [str(url), start, size]


def _record_files(directory: Path, records: int) -> list[tuple[int, Path]]:
    """(record number, file) of the record files in ``directory``, in order: listed, not
    looked for one by one, as an index may claim more records than could ever be written
    (a missing one holds only missing chunks, as fsspec reads it)."""
    found = []
    try:
        entries = list(directory.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    for entry in entries:
        match = _RECORD.fullmatch(entry.name)
        if match is not None and int(match.group(1)) < records:
            found.append((int(match.group(1)), entry))
    return sorted(found)


_RECORD = re.compile(r"refs\.(0|[1-9][0-9]*)\.parq")


def _rows(columns: dict[str, Any]) -> int:
    return max((len(v) for v in columns.values()), default=0)


def _present(value: object) -> bool:
    """Whether a parquet cell holds a value (pandas shows a missing one as None or NaN)."""
    if value is None:
        return False
    return not (isinstance(value, float) and math.isnan(value))


def _reader(name: str) -> Any:
    """A function reading one parquet file into ``{column: array}``, with pandas and the
    first engine installed: fastparquet, else pyarrow (fsspec's choice too)."""
    engine = next((e for e in ("fastparquet", "pyarrow") if importlib.util.find_spec(e)), None)
    if engine is None:
        raise ImportSourceError(
            name,
            "reading parquet references needs the fastparquet package (or pyarrow); "
            "install one, e.g. pip install fastparquet",
        )
    # Imported by name: neither ships type information.
    module: Any = importlib.import_module(
        "fastparquet" if engine == "fastparquet" else "pyarrow.parquet"
    )

    def read(path: Path) -> dict[str, Any]:
        # From bytes, so no file stays open whatever the engine does with it.
        data = io.BytesIO(path.read_bytes())
        if engine == "fastparquet":
            frame = module.ParquetFile(data).to_pandas()
            return {c: frame[c].to_numpy() for c in frame.columns}
        table = module.read_table(data)
        return {c: table.column(c).to_pylist() for c in table.column_names}

    return read
