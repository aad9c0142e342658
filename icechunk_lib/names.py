"""Validation of branch, tag and node names: nothing a user types can escape the repository."""

from __future__ import annotations

import re

from icechunk_lib.errors import InvalidNameError

__all__ = ["MAX_NAME_BYTES", "validate_node_path", "validate_ref_name"]

MAX_NAME_BYTES = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0 and C1 control characters


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


def validate_node_path(path: str) -> str:
    """Return a normalised node path (``/`` or ``/a/b``) or raise ``InvalidNameError``."""
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
