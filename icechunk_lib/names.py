"""Validation of branch, tag and node names: nothing a user types can escape the repository."""

from __future__ import annotations

import re

from icechunk_lib.errors import InvalidNameError
from icechunk_lib.format.ids import is_object_id

__all__ = ["MAX_NAME_BYTES", "validate_new_ref_name", "validate_node_path", "validate_ref_name"]

MAX_NAME_BYTES = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0 and C1 control characters
_PARENT_SUFFIX = re.compile(r"~[0-9]*\Z")
"""What the revision syntax reads as "N-th parent" at the end of a name (``~``, ``~2``)."""


def validate_ref_name(name: object, kind: str = "branch") -> str:
    """Return ``name`` if it is a valid branch or tag name, else raise ``InvalidNameError``.

    Names are 1..255 UTF-8 bytes with no ``/``, ``\\``, control characters or surrounding
    whitespace, and do not start with ``.`` (so never ``.`` or ``..``, as in git).
    """
    if not isinstance(name, str):
        raise InvalidNameError(kind, name, "names must be strings")
    if not name:
        raise InvalidNameError(kind, name, "names cannot be empty")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise InvalidNameError(kind, name, f"names are limited to {MAX_NAME_BYTES} bytes")
    if name.startswith("."):
        raise InvalidNameError(kind, name, "names cannot start with '.'")
    if "/" in name or "\\" in name:
        raise InvalidNameError(kind, name, "names cannot contain '/' or '\\'")
    if _CONTROL.search(name):
        raise InvalidNameError(kind, name, "names cannot contain control characters")
    if name != name.strip():
        raise InvalidNameError(kind, name, "names cannot start or end with whitespace")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidNameError(kind, name, "names must be valid Unicode text") from None
    return name


def validate_new_ref_name(name: object, kind: str = "branch") -> str:
    """``validate_ref_name`` plus what keeps every new name addressable as a revision.

    Refused: names ending in ``~`` or ``~`` and ASCII digits (``feat~``, ``main~1``: the
    revision syntax reads that as a parent), and names that are a full snapshot id in any
    case (20 Crockford base32 characters: a full id always means that snapshot). A name
    that merely looks like an id prefix is fine: names take precedence over id prefixes.
    Existing refs with such names stay readable and deletable by exact name.
    """
    validate_ref_name(name, kind)
    assert isinstance(name, str)
    if _PARENT_SUFFIX.search(name):
        raise InvalidNameError(
            kind, name, "names cannot end in '~' or '~' and digits (revisions read it as a parent)"
        )
    if is_object_id(name.upper()):
        raise InvalidNameError(kind, name, "names cannot be a snapshot id")
    return name


def validate_node_path(path: str) -> str:
    """Return a normalised node path (``/`` or ``/a/b``) or raise ``InvalidNameError``."""
    if not isinstance(path, str):
        raise InvalidNameError("node", path, "paths must be strings")
    if path in ("", "/"):
        return "/"
    parts = (path[1:] if path.startswith("/") else path).split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise InvalidNameError(
                "node", path, "empty, '.' and '..' path segments are not allowed"
            )
        if _CONTROL.search(part):
            raise InvalidNameError("node", path, "control characters are not allowed")
        if len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            raise InvalidNameError("node", path, f"names are limited to {MAX_NAME_BYTES} bytes")
    return "/" + "/".join(parts)
