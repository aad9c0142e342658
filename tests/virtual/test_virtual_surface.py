"""The virtual-container names of Icechunk 1.1, present in ick with the same parameters (and
checked against Icechunk itself when it is installed)."""

from __future__ import annotations

import inspect
import pickle

import pytest

import icechunk_lib as ic

NAMES = [
    "AnyObjectStoreConfig",
    "ObjectStoreConfig",
    "S3Options",
    "VirtualChunkContainer",
    "containers_credentials",
    "gcs_store",
    "http_store",
    "local_filesystem_store",
    "s3_store",
]
VARIANTS = ["Azure", "Gcs", "Http", "InMemory", "LocalFileSystem", "S3", "S3Compatible", "Tigris"]
CONFIG_METHODS = [
    "clear_virtual_chunk_containers",
    "get_virtual_chunk_container",
    "set_virtual_chunk_container",
    "virtual_chunk_containers",
]
OPENERS = ["create", "create_async", "open", "open_async", "open_or_create", "open_or_create_async"]


def _params(fn: object) -> list[str]:
    return list(inspect.signature(fn).parameters)  # type: ignore[arg-type]


def test_the_names_exist() -> None:
    for name in NAMES:
        assert name in ic.__all__, name
    for variant in VARIANTS:
        cls = getattr(ic.ObjectStoreConfig, variant)
        assert issubclass(cls, ic.ObjectStoreConfig)
        assert cls.__qualname__ == f"ObjectStoreConfig.{variant}"
    for method in CONFIG_METHODS:
        assert (
            hasattr(ic.RepositoryConfig, method) or method in ic.RepositoryConfig.__struct_fields__
        )
    for opener in OPENERS:
        assert "authorize_virtual_chunk_access" in _params(getattr(ic.Repository, opener))
    assert isinstance(
        inspect.getattr_static(ic.Repository, "authorized_virtual_container_prefixes"), property
    )


def test_constructors_as_icechunk_spells_them() -> None:
    store = ic.ObjectStoreConfig.S3(ic.S3Options(region="r"))
    assert ic.VirtualChunkContainer("s3://b/", store) == ic.VirtualChunkContainer(
        url_prefix="s3://b/", store=store
    )
    assert ic.VirtualChunkContainer("s3://b/", store).name is None
    assert ic.ObjectStoreConfig.Http().opts == {} and ic.ObjectStoreConfig.Gcs(None).opts == {}
    assert ic.s3_store(s3_compatible=True) == ic.ObjectStoreConfig.S3Compatible(
        ic.S3Options(network_stream_timeout_seconds=60)
    )
    assert ic.azure_store(account="a", config={"use_emulator": "true"}).opts == {
        "account": "a",
        "use_emulator": "true",
    }
    for obj in (store, ic.VirtualChunkContainer("s3://b/", store), ic.http_store()):
        assert pickle.loads(pickle.dumps(obj)) == obj
    assert repr(ic.local_filesystem_store("/d")) == "ObjectStoreConfig.LocalFileSystem(path='/d')"


def test_parameters_match_icechunk() -> None:
    icechunk = pytest.importorskip("icechunk")
    if not icechunk.__version__.startswith("1.1."):
        pytest.skip(f"compared with Icechunk 1.1; installed: {icechunk.__version__}")
    for name in [
        "s3_store",
        "gcs_store",
        "http_store",
        "local_filesystem_store",
        "containers_credentials",
    ]:
        assert _params(getattr(ic, name)) == _params(getattr(icechunk, name)), name
        if name != "containers_credentials":
            ours = inspect.signature(getattr(ic, name)).parameters.values()
            theirs = inspect.signature(getattr(icechunk, name)).parameters.values()
            assert [p.default for p in ours] == [p.default for p in theirs], name
    from icechunk.storage import azure_store

    assert _params(ic.azure_store) == _params(azure_store)
    for opener in ["create", "open", "open_or_create"]:
        assert _params(getattr(ic.Repository, opener)) == _params(
            getattr(icechunk.Repository, opener)
        )
    for method in CONFIG_METHODS:
        assert hasattr(icechunk.RepositoryConfig, method), method
    assert {v for v in dir(icechunk.ObjectStoreConfig) if not v.startswith("_")} == set(VARIANTS)
    assert _params(icechunk.S3Options) == list(ic.S3Options.__struct_fields__)
    assert list(ic.VirtualChunkContainer.__struct_fields__) == ["url_prefix", "store", "name"]
