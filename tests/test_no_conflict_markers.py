"""No file in the repository holds a leftover merge-conflict marker."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(rb"^(<{7}|={7}|>{7})( |$)", re.MULTILINE)


def _files() -> list[Path]:
    """The tracked files; outside a git checkout, every file not under a dot-directory."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True)
    if listed.returncode == 0 and listed.stdout:
        return [ROOT / name.decode() for name in listed.stdout.split(b"\0") if name]
    return [
        p
        for p in ROOT.rglob("*")
        if not any(
            part.startswith(".") or part == "__pycache__" for part in p.relative_to(ROOT).parts
        )
    ]


def test_no_tracked_text_file_has_a_conflict_marker() -> None:
    files = _files()
    assert len(files) > 100, "found the repository's files"
    marked = [
        str(path.relative_to(ROOT))
        for path in files
        if path.is_file()
        and path.suffix not in {".png", ".whl"}
        and MARKER.search(path.read_bytes())
    ]
    assert marked == []
