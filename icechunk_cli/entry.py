"""The console script ``ick``: imports the app so that even a Ctrl-C during start-up ends
with one line and exit code 130, not a traceback from inside an import."""

from __future__ import annotations

import sys

__all__ = ["main"]

EXIT_INTERRUPTED = 130  # icechunk_cli.errors.EXIT_INTERRUPTED, not imported yet on purpose


def main() -> None:
    """Load the app (typer, rich) and run it."""
    try:
        from icechunk_cli.main import main as run
    except KeyboardInterrupt:
        print("ick: error: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    run()
