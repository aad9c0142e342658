"""Run the ick benchmark suite: ``make bench`` or ``.venv/bin/python benchmarks/run.py``.

Measures ick, Icechunk and zarr's plain stores on the same work, in one run, on the same
backend; writes ``results.json`` and ``results.md`` to ``--out`` and, with ``--update-docs``,
the results block and plots of docs/performance.md.

Examples::

    .venv/bin/python benchmarks/run.py                      # everything (about 15 minutes)
    .venv/bin/python benchmarks/run.py --quick              # smoke run, smaller sizes
    .venv/bin/python benchmarks/run.py --backends s3 --quick  # on a SeaweedFS the run starts
    .venv/bin/python benchmarks/run.py --cases 1,2 --backends local --repeat 9 --merge
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks.cli import main

    raise SystemExit(main())
