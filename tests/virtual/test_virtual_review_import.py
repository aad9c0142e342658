"""Hostile kerchunk reference sets: templates and generators sized to exhaust memory are
refused before anything is built, naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import icechunk_lib as ic
from icechunk_lib.errors import InvalidReferencesError

ZARRAY = json.dumps(
    {
        "zarr_format": 2,
        "shape": [8],
        "chunks": [2],
        "dtype": "|u1",
        "fill_value": 0,
        "order": "C",
        "filters": None,
        "compressor": None,
    }
)


@pytest.fixture
def session(tmp_path: Path) -> ic.Session:
    config = ic.RepositoryConfig.default()
    prefix = f"file://{tmp_path}/files/"
    config.set_virtual_chunk_container(
        ic.VirtualChunkContainer(prefix, ic.local_filesystem_store(str(tmp_path / "files")))
    )
    repo = ic.Repository.create(ic.local_filesystem_storage(str(tmp_path / "repo")), config)
    return repo.writable_session("main")


def test_a_template_repeating_text_past_any_url_is_refused(session: ic.Session) -> None:
    # 'a' * 4e9 would build a 4 GB string before any check looks at it.
    refs = {
        "version": 1,
        "templates": {"u": "a"},
        "refs": {"x/.zarray": ZARRAY, "x/0": ["{{u * 4000000000}}", 0, 2]},
    }
    with pytest.raises(InvalidReferencesError, match=r"x/0.*too long"):
        ic.import_kerchunk(session, refs)
    refs["refs"]["x/0"] = ["{{ 4000000000 * 'a' }}", 0, 2]  # either order
    with pytest.raises(InvalidReferencesError, match="too long"):
        ic.import_kerchunk(session, refs)
    refs["refs"]["x/0"] = ["{{ '%999999999d' % 1 }}", 0, 2]  # or formatting
    with pytest.raises(InvalidReferencesError, match="formatting"):
        ic.import_kerchunk(session, refs)


def test_a_generator_dimension_too_large_is_refused_before_it_is_listed(
    session: ic.Session,
) -> None:
    gen = {
        "key": "x/{{i}}",
        "url": "file:///nowhere",
        "offset": 0,
        "length": 1,
        "dimensions": {"i": {"stop": 10**15}},
    }
    refs = {"version": 1, "refs": {"x/.zarray": ZARRAY}, "gen": [gen]}
    with pytest.raises(InvalidReferencesError, match="too many"):
        ic.import_kerchunk(session, refs)
