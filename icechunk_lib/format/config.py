"""Repository configuration, persisted in the repository's ``config`` object."""

from __future__ import annotations

from typing import Any

import msgspec

from icechunk_lib.errors import ConfigError
from icechunk_lib.format._framing import ObjectKind, decode_object, encode_object
from icechunk_lib.format.containers import VirtualChunkContainer
from icechunk_lib.format.preload import ManifestPreloadConfig
from icechunk_lib.format.splitting import ManifestSplittingConfig
from icechunk_lib.format.storage_settings import (
    SETTING_KINDS,
    StorageConcurrencySettings,
    StorageRetriesSettings,
    StorageSettings,
)

__all__ = [
    "CachingConfig",
    "CompressionConfig",
    "ManifestConfig",
    "RepositoryConfig",
    "decode_config",
    "encode_config",
]


class CompressionConfig(msgspec.Struct, kw_only=True):
    """How metadata files (snapshots, manifests, logs) are compressed."""

    algorithm: str = "zstd"
    level: int = 3


class CachingConfig(msgspec.Struct, kw_only=True):
    """In-process caches of immutable metadata shared by a repository's sessions."""

    num_snapshots: int = 64
    num_bytes_manifests: int = 512 * 1024 * 1024


class ManifestConfig(msgspec.Struct, kw_only=True):
    """How chunk manifests are laid out."""

    max_refs_per_manifest: int = 100_000
    """Arrays with more chunks than this are split by coordinate range across manifests."""
    splitting: ManifestSplittingConfig | None = None
    """Icechunk's manifest splitting rules: arrays a rule matches get manifests cut by region
    at commit (see ``icechunk_lib.regions``)."""
    preload: ManifestPreloadConfig | None = None
    """Icechunk's manifest preload settings: manifests read when a session opens."""


class RepositoryConfig(msgspec.Struct, kw_only=True):
    """Settings of one repository; saved with ``Repository.save_config``."""

    inline_chunk_threshold_bytes: int = 512
    """Chunks of at most this many bytes are stored inside the manifest."""
    get_partial_values_concurrency: int = 10
    compression: CompressionConfig = msgspec.field(default_factory=CompressionConfig)
    caching: CachingConfig = msgspec.field(default_factory=CachingConfig)
    manifest: ManifestConfig = msgspec.field(default_factory=ManifestConfig)
    storage: StorageSettings | None = None
    """Icechunk's storage settings (retries, concurrency, multipart size, conditional
    writes); ``None``: the storage's defaults."""
    virtual_chunk_containers: dict[str, VirtualChunkContainer] | None = None
    """Where virtual chunks may be read from, by URL prefix; ``None``: none declared. Reading
    from one also needs it authorised when the repository is opened (never saved)."""

    @classmethod
    def default(cls) -> RepositoryConfig:
        return cls()

    def set_virtual_chunk_container(self, cont: VirtualChunkContainer) -> None:
        """Declare ``cont``, replacing any container of the same prefix (Icechunk's rule).

        Raises ``InvalidVirtualContainerError`` naming the prefix and the rule it breaks.
        """
        if not isinstance(cont, VirtualChunkContainer):
            raise ConfigError(
                f"set_virtual_chunk_container takes a VirtualChunkContainer, got {cont!r}"
            )
        cont.check()
        self.virtual_chunk_containers = {
            **(self.virtual_chunk_containers or {}),
            cont.url_prefix: cont,
        }

    def clear_virtual_chunk_containers(self) -> None:
        """Forget every declared container."""
        self.virtual_chunk_containers = {}

    def get_virtual_chunk_container(self, name: str) -> VirtualChunkContainer | None:
        """The container declared under prefix ``name`` (Icechunk's lookup), else the one
        whose ``name`` it is; None if there is neither."""
        containers = self.virtual_chunk_containers or {}
        found = containers.get(name)
        if found is not None:
            return found
        return next((c for c in containers.values() if c.name is not None and c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict of every setting (what ``ick config show`` prints)."""
        result: dict[str, Any] = msgspec.to_builtins(self)
        return result

    def with_value(self, key: str, value: str) -> RepositoryConfig:
        """A copy with the setting at dotted ``key`` parsed from text and validated.

        Raises ``ConfigError`` naming the key for an unknown key or a value of the wrong type.
        """
        if not isinstance(key, str) or not isinstance(value, str):
            raise ConfigError(f"config keys and values are given as text, got {key!r} = {value!r}")
        if key == _CONTAINERS or key.startswith(f"{_CONTAINERS}."):
            raise ConfigError(
                f"{key} is not set from text: declare containers in Python with "
                "config.set_virtual_chunk_container(VirtualChunkContainer(prefix, store)) and "
                "save them with Repository.save_config()"
            )
        if _structured(key):
            return self._with_json(key, value)
        if key.startswith("storage."):
            return self._with_storage(key, value)
        data = self.to_dict()
        parts = key.split(".")
        target: Any = data
        for part in parts[:-1]:
            target = target.get(part) if isinstance(target, dict) else None
            if not isinstance(target, dict):
                break
        if (
            not isinstance(target, dict)
            or parts[-1] not in target
            or isinstance(target[parts[-1]], dict)
        ):
            known = ", ".join(_leaf_keys(_with_storage_keys(self.to_dict())))
            raise ConfigError(f"unknown config key {key!r}; known keys: {known}")
        current = target[parts[-1]]
        target[parts[-1]] = _parse_like(current, value, key)
        try:
            updated = msgspec.convert(data, RepositoryConfig)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"invalid value {value!r} for {key}: {exc}") from None
        return updated.validate()

    def _with_storage(self, key: str, value: str) -> RepositoryConfig:
        """A copy with one ``storage.*`` setting set from text (``none`` unsets it); the
        settings are made on first use, as Icechunk's are."""
        name = key.removeprefix("storage.")
        kind = SETTING_KINDS.get(name)
        if kind is None:
            known = ", ".join(f"storage.{k}" for k in SETTING_KINDS)
            raise ConfigError(f"unknown config key {key!r}; storage keys: {known}")
        data = _with_storage_keys(self.to_dict())
        target = data["storage"]
        *parents, leaf = name.split(".")
        for part in parents:
            target = target[part]
        if value.strip().lower() in ("none", "null", ""):
            target[leaf] = None
        else:
            target[leaf] = _parse_like(kind(), value, key)
        try:
            updated = msgspec.convert(data, RepositoryConfig)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"invalid value {value!r} for {key}: {exc}") from None
        return updated.validate()

    def _with_json(self, key: str, value: str) -> RepositoryConfig:
        """A copy with the rules or condition at ``key`` set from JSON in the form ``to_dict``
        gives (what ``ick config show --json`` prints); ``null`` unsets them."""
        if key not in _JSON_KEYS:
            raise ConfigError(
                f"{key} is not set from text: set the whole of "
                f"{' or '.join(k for k in _JSON_KEYS if key.startswith(k + '.'))} as JSON, or "
                "build it in Python (ManifestSplittingConfig.from_dict, ManifestPreloadConfig) "
                "and save it with Repository.save_config"
            )
        try:
            parsed = msgspec.json.decode(value)
        except msgspec.DecodeError as exc:
            raise ConfigError(
                f"{key} takes JSON ({_JSON_KEYS[key]}), got {value!r}: {exc}"
            ) from None
        data = self.to_dict()
        manifest = data["manifest"]
        if key == "manifest.splitting.split_sizes":
            manifest["splitting"] = None if parsed is None else {"split_sizes": parsed}
        elif key == "manifest.preload.preload_if":
            manifest["preload"] = {**(manifest.get("preload") or {}), "preload_if": parsed}
        else:
            manifest[key.rpartition(".")[2]] = parsed
        try:
            updated = msgspec.convert(data, RepositoryConfig)
        except (msgspec.ValidationError, ConfigError) as exc:
            raise ConfigError(
                f"invalid value for {key} (expected {_JSON_KEYS[key]}): {exc}"
            ) from None
        return updated.validate()

    def validate(self) -> RepositoryConfig:
        """Return ``self`` if every value has its type and is in range, else raise
        ``ConfigError``. Structs do not check types when built or assigned, and a mistyped
        value saved would fail to decode on every later open."""
        self._check_containers()
        try:
            msgspec.convert(msgspec.to_builtins(self), RepositoryConfig)
        except (msgspec.ValidationError, TypeError) as exc:
            raise ConfigError(f"invalid repository config: {exc}") from None
        for key, value in _leaves(self.to_dict()):
            if type(value) is int and not 0 <= value <= MAX_INT:
                raise ConfigError(f"{key} must be between 0 and {MAX_INT}, got {value}")
        if not 0 <= self.inline_chunk_threshold_bytes <= 64 * 1024:
            raise ConfigError(
                "inline_chunk_threshold_bytes must be between 0 and 65536, "
                f"got {self.inline_chunk_threshold_bytes}"
            )
        if self.compression.algorithm != "zstd":
            raise ConfigError(f"unknown compression algorithm {self.compression.algorithm!r}")
        if not 1 <= self.compression.level <= 22:
            raise ConfigError(f"compression level must be 1..22, got {self.compression.level}")
        if self.manifest.max_refs_per_manifest < 1:
            raise ConfigError("manifest.max_refs_per_manifest must be at least 1")
        if self.get_partial_values_concurrency < 1:
            raise ConfigError("get_partial_values_concurrency must be at least 1")
        if self.caching.num_snapshots < 1 or self.caching.num_bytes_manifests < 0:
            raise ConfigError("caching sizes must be positive")
        return self

    def _check_containers(self) -> None:
        """Each container valid, under its own prefix, and no name used twice; checked
        before the type check so the error names the container."""
        containers = self.virtual_chunk_containers
        if containers is None:
            return
        if not isinstance(containers, dict):
            raise ConfigError(
                f"virtual_chunk_containers must map prefixes to containers, got {containers!r}"
            )
        names: set[str] = set()
        for prefix, cont in containers.items():
            if not isinstance(cont, VirtualChunkContainer):
                raise ConfigError(
                    f"virtual_chunk_containers[{prefix!r}] must be a VirtualChunkContainer, "
                    f"got {cont!r}"
                )
            cont.check()
            if prefix != cont.url_prefix:
                raise ConfigError(
                    f"virtual_chunk_containers[{prefix!r}] holds the container of prefix "
                    f"{cont.url_prefix!r}; use config.set_virtual_chunk_container(container)"
                )
            if cont.name is not None:
                if cont.name in names:
                    raise ConfigError(f"two virtual chunk containers are named {cont.name!r}")
                names.add(cont.name)


MAX_INT = 2**63 - 1
"""The largest integer setting: every one is a count or a size, and must fit an int64."""


def _leaves(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted key, value) of every setting, in order."""
    found: list[tuple[str, Any]] = []
    for name, value in data.items():
        if isinstance(value, dict):
            found.extend(_leaves(value, f"{prefix}{name}."))
        else:
            found.append((prefix + name, value))
    return found


def _leaf_keys(data: dict[str, Any]) -> list[str]:
    """The keys ``with_value`` can set."""
    return [
        key
        for key, _ in _leaves(data)
        if not _structured(key) and not key.startswith(f"{_CONTAINERS}.")
    ]


_CONTAINERS = "virtual_chunk_containers"
"""Declared in Python only: prefixes hold dots, and a container is a whole, checked unit."""


_STRUCTURED = ("manifest.splitting", "manifest.preload.preload_if")
"""Settings made of conditions and rules (with all keys under them), which ``with_value``
cannot parse from text; ``manifest.preload`` itself is one too, but its count is a scalar."""


_JSON_KEYS = {
    "manifest.splitting": 'an object {"split_sizes": [rules]} or null',
    "manifest.splitting.split_sizes": (
        "a list of rules [condition, [[dimension condition, chunks], ...]], e.g. "
        '[[{"kind": "name_matches", "regex": "^temp"}, [[{"kind": "axis", "axis": 0}, 24]]]]'
    ),
    "manifest.preload": 'an object {"max_total_refs": n, "preload_if": condition} or null',
    "manifest.preload.preload_if": 'a condition, e.g. {"kind": "name_matches", "regex": "^lat$"}',
}
"""The structured settings ``with_value`` takes as JSON, and what each expects."""


def _structured(key: str) -> bool:
    return key == "manifest.preload" or any(
        key == s or key.startswith(f"{s}.") for s in _STRUCTURED
    )


def _parse_like(current: object, text: str, key: str) -> object:
    """Parse ``text`` as a value of the same type as ``current`` (an unset one is a count)."""
    if isinstance(current, bool):
        lowered = text.strip().lower()
        if lowered in ("true", "yes", "on", "1"):
            return True
        if lowered in ("false", "no", "off", "0"):
            return False
        raise ConfigError(f"{key} takes true or false, got {text!r}")
    if current is None or isinstance(current, int):
        try:
            return int(text.replace("_", ""))
        except ValueError:
            raise ConfigError(f"{key} takes an integer, got {text!r}") from None
    if isinstance(current, float):
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{key} takes a number, got {text!r}") from None
    return text


def _with_storage_keys(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a ``to_dict``) with every storage setting present, unset ones as None."""
    current = data.get("storage") or {}
    empty = msgspec.to_builtins(
        StorageSettings(concurrency=StorageConcurrencySettings(), retries=StorageRetriesSettings())
    )
    for name in ("concurrency", "retries"):
        empty[name].update(current.get(name) or {})
    for name, value in current.items():
        if name not in ("concurrency", "retries"):
            empty[name] = value
    return {**data, "storage": empty}


_WRITTEN_WHEN_SET: dict[type[msgspec.Struct], tuple[str, ...]] = {
    ManifestConfig: ("splitting", "preload"),
    RepositoryConfig: ("storage", "virtual_chunk_containers"),
}
"""Fields added after format 2 shipped, left out of the map while they are None.

The config is a map, so a reader takes a missing field as its default and ignores unknown
ones. Leaving unset new fields out keeps an unchanged config byte for byte what earlier
versions wrote, and lets them read a config that uses none of the new settings as before.
"""


def _document(struct: msgspec.Struct) -> dict[str, Any]:
    """``struct`` as the map it is written as, without its unset ``_WRITTEN_WHEN_SET`` fields.

    A dict of the same keys in field order encodes to the same msgpack map as the struct.
    """
    omitted = _WRITTEN_WHEN_SET.get(type(struct), ())
    document: dict[str, Any] = {}
    for name in struct.__struct_fields__:
        value = getattr(struct, name)
        if name in omitted and value is None:
            continue
        document[name] = _document(value) if type(value) in _NESTED else value
    return document


_NESTED = (CompressionConfig, CachingConfig, ManifestConfig)


def encode_config(config: RepositoryConfig) -> bytes:
    return encode_object(
        ObjectKind.CONFIG, _document(config), object_id=None, compression_level=None
    )


def decode_config(data: bytes, *, path: str) -> RepositoryConfig:
    return decode_object(data, ObjectKind.CONFIG, RepositoryConfig, object_id=None, path=path)
