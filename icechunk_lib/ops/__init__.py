"""Repository-wide operations: diffs (and, later, gc, expiration, stats, verification)."""

from icechunk_lib.ops.diff import Diff

__all__ = ["Diff"]
