"""Mounting helpers for the storage tests that need a real small or read-only file system."""

from __future__ import annotations

import subprocess


def mount(*args: str) -> bool:
    """Run ``mount`` with ``args``; whether it worked."""
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    return done.returncode == 0
