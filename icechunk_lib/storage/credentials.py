"""Credentials for object storage (Icechunk's ``icechunk.credentials``); for now S3's,
as Icechunk 1.1 spells them: ``S3StaticCredentials``, the four
``S3Credentials`` variants and the ``s3_*_credentials`` helpers.

Secrets never show: reprs print the access key id alone. How a storage holding them pickles
(without them) is ``S3Storage``'s business; see ``icechunk_lib.storage.s3``.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from icechunk_lib.errors import StorageError

__all__ = [
    "AnyS3Credential",
    "S3Credentials",
    "S3StaticCredentials",
    "aws_profile_error",
    "credential_kind",
    "empty_profile_error",
    "s3_anonymous_credentials",
    "s3_credentials",
    "s3_from_env_credentials",
    "s3_refreshable_credentials",
    "s3_static_credentials",
]


class S3StaticCredentials:
    """An access key pair, an optional session token and when they expire."""

    __slots__ = ("access_key_id", "expires_after", "secret_access_key", "session_token")

    def __init__(
        self,
        access_key_id: str,
        secret_access_key: str,
        session_token: str | None = None,
        expires_after: datetime | None = None,
    ) -> None:
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.session_token = session_token
        self.expires_after = expires_after

    def __repr__(self) -> str:
        # The secret and token are never shown, whatever prints this.
        return (
            f"S3StaticCredentials(access_key_id={self.access_key_id!r}, "
            f"secret_access_key='***', expires_after={self.expires_after!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, S3StaticCredentials):
            return NotImplemented
        return (
            self.access_key_id,
            self.secret_access_key,
            self.session_token,
            self.expires_after,
        ) == (
            other.access_key_id,
            other.secret_access_key,
            other.session_token,
            other.expires_after,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, like Icechunk's


class S3Credentials:
    """The ways an S3 storage can authenticate (Icechunk's ``S3Credentials`` variants)."""

    class FromEnv:
        """Credentials from the environment: ``AWS_ACCESS_KEY_ID`` and friends, the
        ``AWS_PROFILE`` profile in ``~/.aws``, or an instance role."""

        def __repr__(self) -> str:
            return "S3Credentials.FromEnv()"

        def __eq__(self, other: object) -> bool:
            return isinstance(other, S3Credentials.FromEnv)

        def __hash__(self) -> int:
            return hash("from_env")

    class Anonymous:
        """Unsigned requests, for public buckets."""

        def __repr__(self) -> str:
            return "S3Credentials.Anonymous()"

        def __eq__(self, other: object) -> bool:
            return isinstance(other, S3Credentials.Anonymous)

        def __hash__(self) -> int:
            return hash("anonymous")

    class Static:
        """Fixed credentials given in code."""

        def __init__(self, credentials: S3StaticCredentials) -> None:
            self.credentials = credentials

        def __repr__(self) -> str:
            return f"S3Credentials.Static({self.credentials!r})"

    class Refreshable:
        """Credentials from a function called again before the last ones expire.

        ``pickled_function`` is the pickled callable (Icechunk's form); ``current`` the
        first credentials, used before the function is called.
        """

        def __init__(
            self, pickled_function: bytes, current: S3StaticCredentials | None = None
        ) -> None:
            self.pickled_function = pickled_function
            self.current = current

        @property
        def get_credentials(self) -> Callable[[], S3StaticCredentials]:
            """The callable that fetches fresh credentials."""
            function: Callable[[], S3StaticCredentials] = pickle.loads(self.pickled_function)
            return function

        def __repr__(self) -> str:
            return f"S3Credentials.Refreshable({self.get_credentials!r})"


AnyS3Credential = (
    S3Credentials.Static
    | S3Credentials.Anonymous
    | S3Credentials.FromEnv
    | S3Credentials.Refreshable
)


def s3_refreshable_credentials(
    get_credentials: Callable[[], S3StaticCredentials],
    scatter_initial_credentials: bool = False,
) -> S3Credentials.Refreshable:
    """Credentials fetched by ``get_credentials`` (which must pickle by reference: a
    module-level function) and fetched again before they expire.

    ``scatter_initial_credentials=True`` calls it now and uses that result first.
    """
    try:
        pickled = pickle.dumps(get_credentials)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise ValueError(
            f"get_credentials must be picklable (a module-level function), got "
            f"{get_credentials!r}: {exc}"
        ) from None
    current = get_credentials() if scatter_initial_credentials else None
    return S3Credentials.Refreshable(pickled, current)


def s3_static_credentials(
    *,
    access_key_id: str,
    secret_access_key: str,
    session_token: str | None = None,
    expires_after: datetime | None = None,
) -> S3Credentials.Static:
    """Fixed credentials for S3 and S3-compatible stores."""
    return S3Credentials.Static(
        S3StaticCredentials(
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            session_token=session_token,
            expires_after=expires_after,
        )
    )


def s3_anonymous_credentials() -> S3Credentials.Anonymous:
    """Unsigned requests (public buckets)."""
    return S3Credentials.Anonymous()


def s3_from_env_credentials() -> S3Credentials.FromEnv:
    """Credentials from the environment, the AWS profile files or an instance role."""
    return S3Credentials.FromEnv()


def s3_credentials(
    *,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    session_token: str | None = None,
    expires_after: datetime | None = None,
    anonymous: bool | None = None,
    from_env: bool | None = None,
    get_credentials: Callable[[], S3StaticCredentials] | None = None,
    scatter_initial_credentials: bool = False,
) -> AnyS3Credential:
    """The credentials the arguments describe, by Icechunk's rules: none given means from
    the environment; conflicting ones raise ``ValueError``."""
    keys_absent = (
        access_key_id is None
        and secret_access_key is None
        and session_token is None
        and expires_after is None
    )
    if (from_env is None or from_env) and keys_absent and not anonymous and get_credentials is None:
        return s3_from_env_credentials()
    if anonymous and keys_absent and not from_env and get_credentials is None:
        return s3_anonymous_credentials()
    if get_credentials is not None and keys_absent and not from_env and not anonymous:
        return s3_refreshable_credentials(
            get_credentials, scatter_initial_credentials=scatter_initial_credentials
        )
    if (
        access_key_id
        and secret_access_key
        and not from_env
        and not anonymous
        and get_credentials is None
    ):
        return s3_static_credentials(
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            session_token=session_token,
            expires_after=expires_after,
        )
    raise ValueError("Conflicting arguments to s3_credentials function")


def _aws_files() -> tuple[str, str]:
    """The AWS config and shared credentials files botocore reads."""
    config = os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config"
    credentials = os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials"
    return str(Path(config).expanduser()), str(Path(credentials).expanduser())


def _profile() -> tuple[str, str]:
    """The AWS profile in use and the variable that chose it."""
    for variable in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        name = os.environ.get(variable)
        if name:
            return name, variable
    return "default", "AWS_PROFILE"


def aws_profile_error(where: str, exc: Exception) -> StorageError:
    """What botocore's error about the AWS profile or its files (``exc``) means for
    ``where``, naming the profile or file and the fix; never a secret (a parse error names
    the file, never its lines)."""
    config, credentials = _aws_files()
    profile, variable = _profile()
    kind = type(exc).__name__
    details = getattr(exc, "kwargs", {})
    if kind == "ProfileNotFound":
        return StorageError(
            f"the AWS profile {profile!r} ({variable}) for {where} is in neither {config} "
            f"nor {credentials}: correct its name, add it to one of them, or unset {variable}"
        )
    if kind == "ConfigParseError":
        path = str(Path(str(details.get("path", config))).expanduser())
        which = "AWS_SHARED_CREDENTIALS_FILE" if path == credentials else "AWS_CONFIG_FILE"
        return StorageError(
            f"cannot parse the AWS profile file {path} ({which}) for {where}: correct its "
            f"syntax ([profile-name] headers, key = value lines), or point {which} at "
            "another file"
        )
    if kind == "PartialCredentialsError":
        missing = details.get("cred_var", "a key")
        return StorageError(
            f"the AWS profile {profile!r} ({variable}) for {where} has partial credentials: "
            f"{missing} is missing; add aws_access_key_id and aws_secret_access_key to it "
            f"in {credentials}, or unset {variable}"
        )
    return StorageError(
        f"cannot resolve AWS credentials for {where} ({kind}): check the profile "
        f"{profile!r} ({variable}) in {config} and {credentials}"
    )


def empty_profile_error(where: str) -> StorageError | None:
    """The error for finding no credentials when a profile was chosen (it has no keys), or
    ``None`` when none was (the caller says where credentials can come from)."""
    profile, variable = _profile()
    if variable not in os.environ:
        return None
    _, credentials = _aws_files()
    return StorageError(
        f"the AWS profile {profile!r} ({variable}) gives no credentials for {where}: add "
        f"aws_access_key_id and aws_secret_access_key to it in {credentials} (or a "
        f"credential_process, SSO or role), or unset {variable}"
    )


def credential_kind(credentials: AnyS3Credential) -> str:
    """What a pickle records of S3 credentials in place of them: ``anonymous``, ``static``,
    ``refreshable`` or ``from_env`` (another process re-resolves them from that)."""
    if isinstance(credentials, S3Credentials.Anonymous):
        return "anonymous"
    if isinstance(credentials, S3Credentials.Static):
        return "static"
    if isinstance(credentials, S3Credentials.Refreshable):
        return "refreshable"
    return "from_env"
