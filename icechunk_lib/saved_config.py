"""The repository config as saved in storage: read, create and compare-and-swap.

The config is the one metadata file besides refs that changes in place, so every save swaps
against the version token of the config the writer read (DESIGN.md: refs and config change
only by compare-and-swap); a lost swap is ``ConfigChangedError``, never a lost change.
"""

from __future__ import annotations

import contextlib
from typing import Any

from icechunk_lib.errors import (
    ConfigChangedError,
    ObjectExistsError,
    ObjectNotFoundError,
    PreconditionFailedError,
)
from icechunk_lib.format import RepositoryConfig
from icechunk_lib.format.config import decode_config, encode_config
from icechunk_lib.objects import CONFIG
from icechunk_lib.storage import Storage

__all__ = [
    "CONFIG_TRIES",
    "config_value",
    "read_config",
    "set_value",
    "swap_config",
    "write_new_config",
]

CONFIG_TRIES = 100
"""Attempts of ``set_value``; each lost one means another writer's change landed."""

_NO_VERSION = ""
"""A version token no saved config has: a save against it always conflicts."""


async def read_config(storage: Storage) -> tuple[RepositoryConfig | None, str | None]:
    """The saved config and its version token; (None, None) if none was saved."""
    try:
        data, version = await storage.get_versioned(CONFIG)
    except ObjectNotFoundError:
        return None, None
    return decode_config(data, path=f"{CONFIG} in {storage.url}"), version


async def write_new_config(storage: Storage, data: bytes) -> str:
    """Create the config file; return its version token, as if this writer had read it."""
    # Existing: ours whose reply was lost, or another writer's; the read below tells.
    with contextlib.suppress(ObjectExistsError):
        await storage.put_if_absent(CONFIG, data)
    current, version = await storage.get_versioned(CONFIG)
    # Someone saved another config in between: a later save by this writer must conflict.
    return version if current == data else _NO_VERSION


async def swap_config(storage: Storage, config: RepositoryConfig, version: str | None) -> str:
    """Save ``config`` if the saved one is still at ``version`` (None: still absent).

    Returns the new version token.

    Raises:
        ConfigChangedError: someone else saved a config since ``version`` was read.
    """
    data = encode_config(config)
    try:
        if version is None:
            new_version = await write_new_config(storage, data)
            if new_version == _NO_VERSION:
                raise ObjectExistsError(CONFIG)
            return new_version
        return await storage.put_if_match(CONFIG, data, version)
    except (PreconditionFailedError, ObjectExistsError):
        # A save whose reply was lost is recognised by the storage (its contract): this is
        # another writer's save.
        raise ConfigChangedError(
            f"someone else changed the repository config in {storage.url} since it was "
            "read; nothing was saved. Reopen the repository and try again"
        ) from None


async def set_value(
    storage: Storage, config: RepositoryConfig, version: str | None, key: str, value: str
) -> tuple[RepositoryConfig, str, Any, Any]:
    """Save ``config`` with the dotted setting ``key`` set from text, merging others' saves.

    Returns the config saved, its version token, and the value of ``key`` before and after.
    A save that lost to another writer is retried on their config if they left ``key`` alone.

    Raises:
        ConfigError: ``key`` is unknown or ``value`` is invalid for it.
        ConfigChangedError: another writer changed ``key`` too, or kept changing the config.
    """
    base = config
    for _ in range(CONFIG_TRIES):
        updated = base.with_value(key, value)
        before = config_value(base, key)
        try:
            new_version = await swap_config(storage, updated, version)
        except ConfigChangedError:
            saved, version = await read_config(storage)
            saved = saved or RepositoryConfig.default()
            if config_value(saved, key) != before:
                raise ConfigChangedError(
                    f"config key {key!r} was changed by someone else meanwhile (to "
                    f"{config_value(saved, key)!r}); nothing was saved, look and retry"
                ) from None
            base = saved
            continue
        return updated, new_version, before, config_value(updated, key)
    raise ConfigChangedError(
        f"the repository config kept changing while setting {key!r}; nothing was saved"
    )


def config_value(config: RepositoryConfig, key: str) -> Any:
    """The value of the dotted setting ``key`` (None if there is no such setting)."""
    value: Any = config.to_dict()
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value
