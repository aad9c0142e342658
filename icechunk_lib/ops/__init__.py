"""Repository-wide operations: diffs, verification (and, later, gc, expiration, stats)."""

from icechunk_lib.ops.diff import Diff

__all__ = ["Diff"]
