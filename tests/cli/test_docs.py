"""docs/cli.md stays true to the program: the generated reference and the JSON fields."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from icechunk_cli import docgen
from icechunk_cli.main import app

from .conftest import Ick, Sample

CLI_MD = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_the_reference_in_docs_cli_md_is_current() -> None:
    """Regenerate with: python -m icechunk_cli.docgen --write docs/cli.md"""
    text = CLI_MD.read_text(encoding="utf-8")
    assert docgen.replace_reference(text, docgen.reference()) == text


def test_the_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "cli.md"
    stale.write_text(f"intro\n{docgen.BEGIN}\nold\n{docgen.END}\noutro\n")
    assert docgen.main(["--check", str(stale)]) == 1
    assert docgen.main(["--write", str(stale)]) == 0
    assert docgen.main(["--check", str(stale)]) == 0
    text = stale.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n")
    assert "### `ick log`" in text


def test_the_reference_covers_every_command() -> None:
    reference = docgen.reference()
    from typer.main import get_command

    root: Any = get_command(app)
    for name, cmd in root.commands.items():
        assert f"### `ick {name}`" in reference
        for sub in getattr(cmd, "commands", {}):
            assert f"### `ick {name} {sub}`" in reference
    for code in (0, 1, 2, 3, 4, 5, 130):
        assert f"| {code} |" in reference


def keys(doc: Any) -> set[str]:
    """Every object key in a JSON document, at any depth (not inside metadata/attributes)."""
    found: set[str] = set()
    if isinstance(doc, dict):
        for key, value in doc.items():
            found.add(key)
            if key not in ("metadata", "attributes", "config"):
                found |= keys(value)
    elif isinstance(doc, list):
        for item in doc:
            found |= keys(item)
    return found


JSON_COMMANDS = [
    ["log", "--all"],
    ["show"],
    ["diff", "v1.0", "experiment"],
    ["diff", "main", "--stat"],
    ["ls", "-l"],
    ["branch"],
    ["branch", "create", "x"],
    ["tag"],
    ["tag", "create", "t"],
    ["reset", "main", "v1.0", "--yes"],
    ["reflog"],
    ["config", "show"],
    ["config", "set", "compression.level", "4"],
]


@pytest.mark.parametrize("args", JSON_COMMANDS, ids=" ".join)
def test_every_json_field_is_documented(ick: Ick, sample: Sample, args: list[str]) -> None:
    documented = set(re.findall(r'"([a-z_]+)"|`([a-z_]+)`', CLI_MD.read_text()))
    names = {a or b for a, b in documented}
    missing = keys(json.loads(ick(*args, "--json").stdout)) - names
    assert not missing, f"undocumented JSON fields of ick {' '.join(args)}: {missing}"
