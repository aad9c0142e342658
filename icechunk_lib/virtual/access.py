"""Which virtual chunk containers the user authorised, and with what: memory only.

``authorize_virtual_chunk_access`` maps container prefixes to credentials (``None``: the
environment's default credentials, or anonymous access where the store allows it). The map
lives in a ``VirtualAccess`` held by the repository object: never saved in the repository,
never shown in a repr, never put in a pickle. A pickled ``VirtualAccess`` carries a random
token and, per prefix, only the kind of its credentials; unpickled in the same process it
finds the live credentials by the token, elsewhere it re-resolves them as ``S3Storage``
does (``None`` and anonymous stay so, a refresh function is pickled by reference and called
again, keys given in code fall back to the environment).

Icechunk's rules kept: a prefix may be authorised before (or without) being declared; it
then authorises nothing until a container of exactly that prefix is declared.
"""

from __future__ import annotations

import secrets
import weakref
from collections.abc import Mapping
from typing import Any

from icechunk_lib.errors import InvalidVirtualContainerError
from icechunk_lib.storage.credentials import AnyS3Credential, S3Credentials, credential_kind

__all__ = ["AnyContainerCredential", "VirtualAccess", "containers_credentials"]

AnyContainerCredential = AnyS3Credential
"""Credentials a container can be authorised with: S3's, for ``s3://`` containers (``None``
stands for default or anonymous access, for any container)."""

_CREDENTIAL_TYPES = (
    S3Credentials.Static,
    S3Credentials.Anonymous,
    S3Credentials.FromEnv,
    S3Credentials.Refreshable,
)

_live: weakref.WeakValueDictionary[str, VirtualAccess] = weakref.WeakValueDictionary()
"""Token -> a live authorisation, for unpickling in the same process."""


def containers_credentials(
    m: Mapping[str, AnyContainerCredential | None],
) -> dict[str, AnyContainerCredential | None]:
    """The ``authorize_virtual_chunk_access`` map for ``m`` (prefix -> credentials or None),
    each entry checked (Icechunk's helper; ick's credentials need no wrapping).

    Raises ``InvalidVirtualContainerError`` naming the prefix of a wrong entry.
    """
    return VirtualAccess(m).grants()


class VirtualAccess:
    """The authorised container prefixes and their credentials, for one repository object."""

    __slots__ = ("__weakref__", "_grants", "_lost", "_token")

    def __init__(self, grants: Mapping[str, AnyContainerCredential | None] | None = None) -> None:
        if grants is None:
            grants = {}
        if not isinstance(grants, Mapping):
            raise InvalidVirtualContainerError(
                "",
                f"authorize_virtual_chunk_access takes a dict of prefix: credentials, got "
                f"{type(grants).__name__}",
            )
        for prefix, credentials in grants.items():
            _check_grant(prefix, credentials)
        self._grants: dict[str, AnyContainerCredential | None] = dict(grants)
        self._lost: frozenset[str] = frozenset()
        self._token = secrets.token_hex(16)
        _live[self._token] = self

    @property
    def prefixes(self) -> set[str]:
        """The authorised prefixes (Icechunk's ``authorized_virtual_container_prefixes``)."""
        return set(self._grants)

    def grants(self) -> dict[str, AnyContainerCredential | None]:
        """A copy of prefix -> credentials."""
        return dict(self._grants)

    def lookup(self, url_prefix: str) -> tuple[bool, AnyContainerCredential | None]:
        """(authorised, credentials) for the container of exactly ``url_prefix``."""
        if url_prefix in self._grants:
            return True, self._grants[url_prefix]
        return False, None

    def lost_static(self, url_prefix: str) -> bool:
        """Whether keys given in code for ``url_prefix`` were left behind by a pickle (the
        environment's credentials stand in): an access error then says so."""
        return url_prefix in self._lost

    def __repr__(self) -> str:
        # Prefixes and credential kinds only, whatever prints this.
        shown = ", ".join(f"{p!r}: {_kind(c)}" for p, c in sorted(self._grants.items()))
        return f"VirtualAccess({{{shown}}})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VirtualAccess):
            return NotImplemented
        return self._grants.keys() == other._grants.keys() and all(
            _kind(self._grants[p]) == _kind(other._grants[p]) for p in self._grants
        )

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        # No secret goes into the pickle (see the module docstring).
        kinds = {p: _kind(c) for p, c in self._grants.items()}
        refresh = {
            p: c.pickled_function
            for p, c in self._grants.items()
            if isinstance(c, S3Credentials.Refreshable)
        }
        return (_restore, (self._token, kinds, refresh))


def _check_grant(prefix: object, credentials: object) -> None:
    if not isinstance(prefix, str):
        raise InvalidVirtualContainerError(
            prefix, "authorize_virtual_chunk_access keys are container url prefixes (text)"
        )
    if credentials is not None and not isinstance(credentials, _CREDENTIAL_TYPES):
        raise InvalidVirtualContainerError(
            prefix,
            f"credentials of type {type(credentials).__name__} are not supported; pass S3 "
            "credentials (ic.s3_credentials(...), ic.s3_static_credentials(...), ...) or "
            "None for default or anonymous access",
        )


def _kind(credentials: AnyContainerCredential | None) -> str:
    return "default" if credentials is None else credential_kind(credentials)


def _restore(token: str, kinds: dict[str, str], refresh: dict[str, bytes]) -> VirtualAccess:
    """Unpickle: the live credentials if this process holds them, else re-resolved."""
    live = _live.get(token)
    if live is not None:
        return VirtualAccess(live.grants())
    grants: dict[str, AnyContainerCredential | None] = {}
    for prefix, kind in kinds.items():
        if kind == "default":
            grants[prefix] = None
        elif kind == "anonymous":
            grants[prefix] = S3Credentials.Anonymous()
        elif kind == "refreshable" and prefix in refresh:
            grants[prefix] = S3Credentials.Refreshable(refresh[prefix])
        else:
            grants[prefix] = S3Credentials.FromEnv()
    access = VirtualAccess(grants)
    access._lost = frozenset(p for p, kind in kinds.items() if kind == "static")
    return access
