"""``examples/demo.py``: an option is never taken for the repository path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo.py"


@pytest.mark.parametrize(
    ("args", "code"), [(["--help"], 0), (["-h"], 0), (["-x"], 2), (["a", "b"], 2)]
)
def test_options_show_the_usage_and_create_nothing(
    tmp_path: Path, args: list[str], code: int
) -> None:
    done = subprocess.run(
        [sys.executable, str(DEMO), *args], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == code
    assert "Usage::" in done.stdout
    assert list(tmp_path.iterdir()) == []
