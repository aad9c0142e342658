"""Output modes: rich on a terminal, plain when piped, JSON with --json; colour switches."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from icechunk_cli import render

from .conftest import Ick, Sample

RELATIVE = re.compile(r"just now|\d+ minutes? ago")

ANSI = re.compile(r"\x1b\[[0-9;]*m")
COLOUR = re.compile(r"\x1b\[[0-9;]*(3[0-7]|38;|9[0-7])[0-9;]*m")

# Every read command and one instance of every writing command (on a fresh sample each).
COMMANDS = [
    ["log"],
    ["log", "--oneline"],
    ["log", "--graph", "--all"],
    ["show", "v1.0"],
    ["diff", "v1.0", "experiment"],
    ["diff", "main", "--stat"],
    ["ls", "-l", "-r"],
    ["reflog", "experiment"],
    ["branch"],
    ["branch", "create", "b2"],
    ["branch", "delete", "experiment"],
    ["tag"],
    ["tag", "create", "t2", "experiment"],
    ["tag", "delete", "v1.0", "--yes"],
    ["reset", "main", "v1.0", "--yes"],
    ["config", "show"],
    ["config", "set", "compression.level", "5"],
    ["stats"],
    ["stats", "--by", "branch"],
    ["stats", "--by", "array"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_json_is_one_document_on_stdout(ick: Ick, args: list[str]) -> None:
    result = ick(*args, "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert isinstance(doc, dict)
    assert result.stdout.count("\n") == 1  # piped: one line


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_terminal_layout_fits_80_columns(ick: Ick, args: list[str]) -> None:
    result = ick(*args, env={"ICK_TERMINAL": "1", "COLUMNS": "80"})
    assert result.exit_code == 0, result.stderr
    for line in ANSI.sub("", result.stdout).splitlines():
        assert len(line) <= 80, line


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_plain_layout_has_no_escape_codes(ick: Ick, args: list[str]) -> None:
    result = ick(*args)
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stdout
    assert "\x1b" not in result.stderr


def test_colour_on_a_terminal_and_how_to_turn_it_off(ick: Ick) -> None:
    terminal = {"ICK_TERMINAL": "1"}
    assert COLOUR.search(ick.ok("log", "--graph", "--all", env=terminal).stdout)
    no_color_env = ick.ok("log", "--graph", "--all", env={**terminal, "NO_COLOR": "1"}).stdout
    assert not COLOUR.search(no_color_env)
    flag = ick.ok("log", "--graph", "--all", "--no-color", env=terminal).stdout
    assert not COLOUR.search(flag)
    # Only the colour goes: the terminal layout (short ids, relative times) stays.
    assert RELATIVE.search(flag)  # the sample was written a moment ago


def test_json_does_not_depend_on_the_text_layout(ick: Ick) -> None:
    piped = ick.ok("tag", "--json").stdout
    # CliRunner's stdout is never a real terminal, so JSON stays on one line even with
    # ICK_TERMINAL=1: the JSON layout depends on the stream only.
    assert json.loads(piped) == json.loads(
        ick.ok("tag", "--json", env={"ICK_TERMINAL": "1"}).stdout
    )


def test_a_long_message_is_cut_to_the_width_on_a_terminal(ick: Ick, sample: Sample) -> None:
    long = "word " * 40
    ick.ok("branch", "create", "long", "v1.0")
    import icechunk_lib as ic

    repo = ic.Repository.open(ic.local_filesystem_storage(sample.path))
    with repo.transaction("long", message=long) as store:
        import zarr

        zarr.open_array(store, path="temps")[9] = 9.0
    for args in (["branch"], ["log", "--all", "--graph"], ["log", "long", "--oneline"]):
        out = ANSI.sub("", ick.ok(*args, env={"ICK_TERMINAL": "1"}).stdout)
        assert "\N{HORIZONTAL ELLIPSIS}" in out
        assert max(len(line) for line in out.splitlines()) <= 80
    plain = ick.ok("log", "long", "--oneline", "-n", "1").stdout
    assert long.strip() in plain  # piped output is never cut


# --- helpers -------------------------------------------------------------------------------------


def test_relative_time() -> None:
    now = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
    ago = [
        (dt.timedelta(seconds=5), "just now"),
        (dt.timedelta(minutes=1), "1 minute ago"),
        (dt.timedelta(minutes=59), "59 minutes ago"),
        (dt.timedelta(hours=3), "3 hours ago"),
        (dt.timedelta(days=1), "1 day ago"),
        (dt.timedelta(days=29), "29 days ago"),
        (dt.timedelta(days=45), "2025-04-17"),
    ]
    for delta, text in ago:
        assert render.relative_time(now - delta, now) == text


def test_formatting_helpers() -> None:
    assert render.format_bytes(512) == "512 B"
    assert render.format_bytes(1536) == "1.5 KiB"
    assert render.format_bytes(3 * 1024**3) == "3.0 GiB"
    assert render.format_shape((3, 4)) == "3x4"
    assert render.format_shape(()) == "()"
    assert render.format_shape(None) == "-"
    assert render.chunk_grid_size((10, 5), (3, 5)) == 4
    assert render.chunk_grid_size(None, (1,)) is None
    assert render.short_id("ABCDEFGHJKMNPQRSTVWX") == "ABCDEFGH"
    moment = dt.datetime(2025, 1, 2, 3, 4, 5, 678, tzinfo=dt.UTC)
    assert render.iso_time(moment) == "2025-01-02T03:04:05+00:00"
    assert json.loads(json.dumps({"t": moment, "b": b"\x00\x01"}, default=render.json_default)) == {
        "t": "2025-01-02T03:04:05.000678+00:00",
        "b": "AAE=",
    }


def test_plain_table_aligns_and_right_aligns_numbers() -> None:
    lines = render.plain_table(
        [render.Column("name"), render.Column("n", numeric=True), render.Column("note")],
        [["a", "1", "x"], ["bbb", "100", ""]],
    )
    assert lines == ["name    n  note", "a       1  x", "bbb   100"]


def test_fit_widths_shrinks_the_widest_shrinking_column_first_and_keeps_a_floor() -> None:
    assert render.fit_widths([10, 5], [True, False], 80, 2) == [10, 5]
    assert render.fit_widths([60, 5, 30], [True, False, True], 60, 2) == [25, 5, 26]
    narrow = render.fit_widths([60, 10, 30], [True, False, True], 20, 2)
    assert narrow == [render.SHRINK_FLOOR, 10, render.SHRINK_FLOOR]
