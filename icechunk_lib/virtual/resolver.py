"""From a virtual chunk's location to what the read path needs: its container, the object's
path below the container's prefix, and the credentials the user authorised for it.

The checks, each with its own error naming the location: the location is a well-formed URL
that cannot leave its container (no ``.``/``..`` segment, percent-encoded or not, no empty
segment right after the prefix, no query, fragment or backslash), a declared container holds
it (the longest matching prefix wins, compared percent-decoded, so the container is that of
the object read however its path is spelt; another scheme or host matches none), and that
container was authorised when the repository was opened.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import unquote

from icechunk_lib.errors import (
    InvalidVirtualContainerError,
    InvalidVirtualLocationError,
    VirtualContainerNotAuthorizedError,
    VirtualContainerNotFoundError,
)
from icechunk_lib.format.containers import (
    S3CompatibleStore,
    S3Store,
    TigrisStore,
    VirtualChunkContainer,
    location_problem,
    split_url,
)
from icechunk_lib.virtual.access import AnyContainerCredential, VirtualAccess

__all__ = ["VirtualResolver", "VirtualTarget"]

_TAKES_S3_CREDENTIALS = (S3Store, S3CompatibleStore, TigrisStore)


class VirtualTarget(NamedTuple):
    """Where one virtual chunk's bytes are, and how to fetch them."""

    container: VirtualChunkContainer
    path: str
    """The object below ``container.url_prefix``, percent-decoded (never empty, never
    starting with ``/``, no ``.`` or ``..`` segment): append it, never URL-join it."""
    credentials: AnyContainerCredential | None
    """What the user authorised the container with; None: default or anonymous access."""


class VirtualResolver:
    """Resolve virtual chunk locations against declared containers and authorisations."""

    __slots__ = ("_access", "_containers")

    def __init__(
        self, containers: Mapping[str, VirtualChunkContainer] | None, access: VirtualAccess
    ) -> None:
        # Matched decoded, as the path read is decoded: ``s3://b/%73ub/x`` names the object
        # ``sub/x``, so it belongs to a container ``s3://b/sub/`` (authorised or not), never
        # to ``s3://b/`` by its spelling. Longest first: the first match is the most specific.
        self._containers = sorted(
            ((unquote(c.url_prefix, errors="replace"), c) for c in (containers or {}).values()),
            key=lambda pc: len(pc[0]),
            reverse=True,
        )
        self._access = access

    def container(self, location: str) -> tuple[VirtualChunkContainer, str]:
        """The container holding ``location`` and the object's path below its prefix,
        without looking at authorisation (what a writer checks, as Icechunk does).

        Raises:
            InvalidVirtualLocationError: the location is malformed or escapes its container.
            VirtualContainerNotFoundError: no declared container holds it.
        """
        if not isinstance(location, str):
            raise InvalidVirtualLocationError(location, "a location is a URL (text)")
        problem = location_problem(location)
        if problem is not None:
            raise InvalidVirtualLocationError(location, problem)
        parts = split_url(location)
        assert parts is not None  # location_problem checked it
        # Schemes are case-insensitive; declared prefixes are lowercase.
        wanted = unquote(parts[0].lower() + location[len(parts[0]) :], errors="replace")
        for decoded, cont in self._containers:
            if wanted.startswith(decoded):
                path = wanted[len(decoded) :]
                if not path:
                    raise InvalidVirtualLocationError(
                        location, f"it names the container {cont.url_prefix!r}, not an object in it"
                    )
                if "" in path.split("/"):
                    raise InvalidVirtualLocationError(
                        location,
                        "it has an empty path segment ('//') below its container "
                        f"{cont.url_prefix!r}, which a URL join could take outside it",
                    )
                return cont, path
        raise VirtualContainerNotFoundError(location, [c.url_prefix for _, c in self._containers])

    def resolve(self, location: str) -> VirtualTarget:
        """The container, path and credentials for reading ``location``.

        Raises what ``container`` raises, and:
            VirtualContainerNotAuthorizedError: the container was not authorised.
            InvalidVirtualContainerError: it was, with credentials its store cannot use.
        """
        cont, path = self.container(location)
        authorised, credentials = self._access.lookup(cont.url_prefix)
        if not authorised:
            raise VirtualContainerNotAuthorizedError(location, cont.url_prefix)
        if credentials is not None and not isinstance(cont.store, _TAKES_S3_CREDENTIALS):
            raise InvalidVirtualContainerError(
                cont.url_prefix,
                f"it was authorised with S3 credentials, which its store {cont.store.label} "
                "cannot use; authorise it with None",
            )
        return VirtualTarget(cont, path, credentials)
