"""Declared containers in the repository config: set/get/clear as Icechunk 1.1 has them,
saved and read back, and configs that declare none keep the bytes earlier versions wrote."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

import icechunk_lib as ic
from icechunk_lib.format import ObjectKind, decode_config, encode_config, encode_object

GOLDEN = sorted((Path(__file__).parents[1] / "data").glob("format2*/config"))


def _containers() -> list[ic.VirtualChunkContainer]:
    return [
        ic.VirtualChunkContainer(
            "s3://archive/",
            ic.s3_store(region="eu-west-1", anonymous=True, requester_pays=True),
        ),
        ic.VirtualChunkContainer(
            "s3://archive/netcdf/",
            ic.s3_store(
                endpoint_url="http://localhost:9000",
                s3_compatible=True,
                allow_http=True,
                force_path_style=True,
            ),
            name="minio",
        ),
        ic.VirtualChunkContainer("gs://public/", ic.gcs_store({"skip_signature": "true"})),
        ic.VirtualChunkContainer("az://blobs/", ic.azure_store(account="acct")),
        ic.VirtualChunkContainer("https://data.example.org/files/", ic.http_store()),
        ic.VirtualChunkContainer("file:///data/grib/", ic.local_filesystem_store("/data/grib")),
        ic.VirtualChunkContainer("tigris://t/", ic.ObjectStoreConfig.Tigris(ic.S3Options())),
    ]


def _config() -> ic.RepositoryConfig:
    config = ic.RepositoryConfig.default()
    for container in _containers():
        config.set_virtual_chunk_container(container)
    return config


def test_set_get_and_clear_as_icechunk_has_them() -> None:
    config = ic.RepositoryConfig.default()
    assert config.virtual_chunk_containers is None
    config = _config()
    containers = config.virtual_chunk_containers
    assert containers is not None
    assert list(containers) == [c.url_prefix for c in _containers()]
    assert config.get_virtual_chunk_container("s3://archive/") == _containers()[0]
    assert config.get_virtual_chunk_container("minio") == _containers()[1]
    # Icechunk looks a container up by its prefix, not by a location inside it.
    assert config.get_virtual_chunk_container("s3://archive/x.nc") is None
    assert config.get_virtual_chunk_container("nope") is None
    replacement = ic.VirtualChunkContainer("s3://archive/", ic.s3_store(region="us-west-2"))
    config.set_virtual_chunk_container(replacement)
    assert config.get_virtual_chunk_container("s3://archive/") == replacement
    assert len(config.virtual_chunk_containers or {}) == len(_containers())
    config.clear_virtual_chunk_containers()
    assert config.virtual_chunk_containers == {}


def test_set_takes_a_container() -> None:
    with pytest.raises(ic.ConfigError, match="takes a VirtualChunkContainer"):
        ic.RepositoryConfig().set_virtual_chunk_container("s3://b/")  # type: ignore[arg-type]


def test_a_name_is_used_once() -> None:
    config = ic.RepositoryConfig()
    config.set_virtual_chunk_container(ic.VirtualChunkContainer("s3://a/", ic.s3_store(), "x"))
    config.set_virtual_chunk_container(ic.VirtualChunkContainer("s3://b/", ic.s3_store(), "x"))
    with pytest.raises(ic.ConfigError, match="two virtual chunk containers are named 'x'"):
        config.validate()


def test_a_container_under_another_prefix_is_refused() -> None:
    config = ic.RepositoryConfig(
        virtual_chunk_containers={"s3://a/": ic.VirtualChunkContainer("s3://b/", ic.s3_store())}
    )
    with pytest.raises(ic.ConfigError, match="holds the container of prefix 's3://b/'"):
        config.validate()


def test_encode_decode_round_trip() -> None:
    config = _config()
    assert decode_config(encode_config(config), path="config") == config
    cleared = _config()
    cleared.clear_virtual_chunk_containers()
    assert decode_config(encode_config(cleared), path="config") == cleared


def test_saved_fetched_and_opened(tmp_path: Path) -> None:
    storage = ic.local_filesystem_storage(str(tmp_path / "repo"))
    repo = ic.Repository.create(storage, config=_config())
    assert ic.Repository.fetch_config(storage) == _config()
    reopened = ic.Repository.open(storage)
    assert reopened.config.virtual_chunk_containers == _config().virtual_chunk_containers
    reopened.config.clear_virtual_chunk_containers()
    reopened.config.set_virtual_chunk_container(_containers()[4])
    reopened.save_config()
    fetched = ic.Repository.fetch_config(storage)
    assert fetched is not None
    assert fetched.virtual_chunk_containers == {_containers()[4].url_prefix: _containers()[4]}
    # Setting a scalar from text keeps the declared containers.
    repo = ic.Repository.open(storage)
    repo.set_config_value("compression.level", "5")
    again = ic.Repository.fetch_config(storage)
    assert again is not None and again.virtual_chunk_containers == fetched.virtual_chunk_containers


def test_containers_are_not_set_from_text() -> None:
    for key in ("virtual_chunk_containers", "virtual_chunk_containers.s3://a/.url_prefix"):
        with pytest.raises(ic.ConfigError, match="set_virtual_chunk_container"):
            _config().with_value(key, "{}")
    with pytest.raises(ic.ConfigError) as exc:
        _config().with_value("nope", "1")
    assert "virtual_chunk_containers" not in str(exc.value)  # not offered as a known key


def test_config_show_lists_them() -> None:
    shown = _config().to_dict()["virtual_chunk_containers"]
    assert shown["file:///data/grib/"] == {
        "url_prefix": "file:///data/grib/",
        "store": {"kind": "local_filesystem", "path": "/data/grib"},
        "name": None,
    }
    assert shown["s3://archive/"]["store"]["options"]["requester_pays"] is True


@pytest.mark.parametrize(
    ("container", "words"),
    [
        ({"url_prefix": "s3://b", "store": {"kind": "s3", "options": {}}}, "must end in '/'"),
        ({"url_prefix": "gs://b/", "store": {"kind": "s3", "options": {}}}, "does not match"),
        (
            {"url_prefix": "file:///d/../e/", "store": {"kind": "local_filesystem", "path": "/"}},
            "'..'",
        ),
        ({"url_prefix": "s3://b/", "store": {"kind": "nfs"}}, "Invalid value 'nfs'"),
        (
            {"url_prefix": "https://h/", "store": {"kind": "http", "opts": {"token": "t"}}},
            "holds a credential",
        ),
    ],
)
def test_a_bad_saved_container_is_a_corrupt_config_naming_it(
    container: dict[str, object], words: str
) -> None:
    document = {"virtual_chunk_containers": {str(container["url_prefix"]): container}}
    data = encode_object(ObjectKind.CONFIG, document, object_id=None, compression_level=None)
    with pytest.raises(ic.CorruptObjectError) as exc:
        decode_config(data, path="config")
    assert words in str(exc.value) and exc.value.path == "config"


# --- configs that declare none ----------------------------------------------------------------


def test_an_unset_field_is_not_written() -> None:
    config = ic.RepositoryConfig()
    document = msgspec.msgpack.decode(msgspec.msgpack.encode(msgspec.to_builtins(config)))
    del document["virtual_chunk_containers"]
    del document["storage"]
    del document["manifest"]["splitting"], document["manifest"]["preload"]
    legacy = encode_object(ObjectKind.CONFIG, document, object_id=None, compression_level=None)
    assert encode_config(config) == legacy


def test_an_older_config_reads_and_saves_back_unchanged(tmp_path: Path) -> None:
    """A config written before containers existed (the golden format 2 repositories') reads
    as declaring none, and a save of it writes the very same bytes."""
    assert GOLDEN
    for path in GOLDEN:
        data = path.read_bytes()
        config = decode_config(data, path=str(path))
        assert config.virtual_chunk_containers is None
        assert encode_config(config) == data
        # Through a repository: open and save the config, byte for byte the same file.
        root = tmp_path / path.parent.name
        storage = ic.local_filesystem_storage(str(root))
        ic.Repository.create(storage)
        (root / "config").write_bytes(data)
        repo = ic.Repository.open(storage)
        repo.save_config()
        assert (root / "config").read_bytes() == data


def test_an_earlier_reader_skips_the_containers() -> None:
    """ick before this change decodes a config that declares containers: it ignores them."""

    class Earlier(msgspec.Struct, kw_only=True):
        inline_chunk_threshold_bytes: int = 512
        compression: ic.CompressionConfig = msgspec.field(default_factory=ic.CompressionConfig)

    from icechunk_lib.format import decode_object

    config = _config()
    config.inline_chunk_threshold_bytes = 99
    earlier = decode_object(
        encode_config(config), ObjectKind.CONFIG, Earlier, object_id=None, path="c"
    )
    assert earlier.inline_chunk_threshold_bytes == 99
