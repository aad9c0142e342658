"""Authorising containers: ``authorize_virtual_chunk_access`` and ``containers_credentials``
as Icechunk 1.1 has them; credentials stay in memory: never in the repository's files, a
repr or a pickle (a pickle re-resolves them, as a pickled S3 storage does)."""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import _virtual_credential_source as source
import numpy as np
import pytest
import s3_servers
import zarr
import zstandard

import icechunk_lib as ic
from icechunk_lib.format import HEADER_SIZE, MAGIC
from icechunk_lib.virtual import VirtualAccess

ROOT = Path(__file__).resolve().parents[2]
SECRET = "virtual-secret-do-not-leak"
SECRETS = (SECRET, s3_servers.SECRET_KEY)


def _config() -> ic.RepositoryConfig:
    config = ic.RepositoryConfig.default()
    config.set_virtual_chunk_container(
        ic.VirtualChunkContainer("s3://archive/", ic.s3_store(region="us-east-1"))
    )
    config.set_virtual_chunk_container(
        ic.VirtualChunkContainer("file:///data/", ic.local_filesystem_store("/data"))
    )
    return config


def _auth() -> dict[str, ic.AnyContainerCredential | None]:
    return ic.containers_credentials(
        {
            "s3://archive/": ic.s3_static_credentials(
                access_key_id="AKIDVIRTUAL", secret_access_key=SECRET, session_token=SECRET
            ),
            "file:///data/": None,
            "s3://declared-later/": ic.s3_static_credentials(
                access_key_id="AK2", secret_access_key=s3_servers.SECRET_KEY
            ),
        }
    )


def _contents(root: Path) -> list[bytes]:
    """Every file under ``root``, and the decompressed payload of each metadata file."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found.append(data)
        if data.startswith(MAGIC):
            # A file stored raw fails to decompress: the bytes above hold it.
            with contextlib.suppress(zstandard.ZstdError):
                found.append(
                    zstandard.ZstdDecompressor().decompressobj().decompress(data[HEADER_SIZE:])
                )
    return found


def _assert_no_secret(blobs: list[bytes] | bytes | str) -> None:
    if isinstance(blobs, str):
        blobs = [blobs.encode()]
    elif isinstance(blobs, bytes):
        blobs = [blobs]
    for secret in SECRETS:
        assert not any(secret.encode() in blob for blob in blobs), secret


def test_authorised_prefixes_as_icechunk_reports_them(tmp_path: Path) -> None:
    storage = ic.local_filesystem_storage(str(tmp_path / "repo"))
    repo = ic.Repository.create(storage, _config(), _auth())
    # Icechunk's rule: a prefix may be authorised without being declared (yet).
    expected = {"s3://archive/", "file:///data/", "s3://declared-later/"}
    assert repo.authorized_virtual_container_prefixes == expected
    assert ic.Repository.open(storage).authorized_virtual_container_prefixes == set()
    opened = ic.Repository.open(storage, authorize_virtual_chunk_access={"file:///data/": None})
    assert opened.authorized_virtual_container_prefixes == {"file:///data/"}
    again = ic.Repository.open_or_create(storage, authorize_virtual_chunk_access=_auth())
    assert again.authorized_virtual_container_prefixes == expected


def test_credentials_never_reach_the_repository(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    storage = ic.local_filesystem_storage(str(root))
    repo = ic.Repository.create(storage, config=_config(), authorize_virtual_chunk_access=_auth())
    repo = ic.Repository.open(storage, authorize_virtual_chunk_access=_auth())
    session = repo.writable_session("main")
    array = zarr.create_array(session.store, name="a", shape=(64,), chunks=(16,), dtype="f8")
    array[:] = np.arange(64)
    session.commit("write")
    repo.config.set_virtual_chunk_container(
        ic.VirtualChunkContainer("s3://declared-later/", ic.s3_store())
    )
    repo.save_config()
    repo.set_config_value("compression.level", "4")
    contents = _contents(root)
    # The search sees inside compressed files: the saved prefixes are there, secrets not.
    assert any(b"s3://declared-later/" in blob for blob in contents)
    _assert_no_secret(contents)
    assert not any(b"AKIDVIRTUAL" in blob for blob in contents)


def test_credentials_never_show_in_reprs(tmp_path: Path) -> None:
    repo = ic.Repository.create(
        ic.local_filesystem_storage(str(tmp_path / "repo")), _config(), _auth()
    )
    access = VirtualAccess(_auth())
    for shown in (
        repr(repo),
        repr(repo.config),
        str(repo.config.to_dict()),
        repr(access),
        repr(_auth()),
        str(_auth()),
    ):
        _assert_no_secret(shown)
    assert repr(access) == (
        "VirtualAccess({'file:///data/': default, 's3://archive/': static, "
        "'s3://declared-later/': static})"
    )


def test_pickles_hold_no_secret_and_keep_the_live_credentials_here(tmp_path: Path) -> None:
    repo = ic.Repository.create(
        ic.local_filesystem_storage(str(tmp_path / "repo")), _config(), _auth()
    )
    payload = pickle.dumps(repo)
    _assert_no_secret(payload)
    assert b"AKIDVIRTUAL" not in payload
    copy = pickle.loads(payload)
    assert copy.authorized_virtual_container_prefixes == repo.authorized_virtual_container_prefixes
    target = copy._virtual_resolver().resolve("s3://archive/x.nc")
    assert isinstance(target.credentials, ic.S3Credentials.Static)
    assert target.credentials.credentials.secret_access_key == SECRET  # same process: live


_ELSEWHERE = """
import pickle, sys
import icechunk_lib as ic
repo = pickle.loads(open(sys.argv[1], "rb").read())
access = repo._virtual_access
resolver = repo._virtual_resolver()
print(sorted(repo.authorized_virtual_container_prefixes))
for location in ("s3://archive/x.nc", "file:///data/x.grib", "s3://anon/x", "s3://refresh/x"):
    creds = resolver.resolve(location).credentials
    prefix = resolver.container(location)[0].url_prefix
    print(location, type(creds).__name__, access.lost_static(prefix))
print(resolver.resolve("s3://refresh/x").credentials.get_credentials().access_key_id)
"""


@pytest.mark.slow
def test_in_another_process_credentials_are_re_resolved(tmp_path: Path) -> None:
    config = _config()
    config.set_virtual_chunk_container(ic.VirtualChunkContainer("s3://anon/", ic.s3_store()))
    config.set_virtual_chunk_container(ic.VirtualChunkContainer("s3://refresh/", ic.s3_store()))
    auth = {
        **_auth(),
        "s3://anon/": ic.s3_anonymous_credentials(),
        "s3://refresh/": ic.s3_refreshable_credentials(source.refreshed),
    }
    repo = ic.Repository.create(ic.local_filesystem_storage(str(tmp_path / "repo")), config, auth)
    path = tmp_path / "repo.pickle"
    path.write_bytes(pickle.dumps(repo))
    _assert_no_secret(path.read_bytes())
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "virtual")]
    )
    done = subprocess.run(
        [sys.executable, "-c", _ELSEWHERE, str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert not done.stderr, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == str(sorted(auth))
    # Keys given in code stay behind: the environment's stand in, and the access says so.
    assert lines[1:] == [
        "s3://archive/x.nc FromEnv True",
        "file:///data/x.grib NoneType False",
        "s3://anon/x Anonymous False",
        "s3://refresh/x Refreshable False",
        "REFRESHED",
    ]
    _assert_no_secret(done.stdout)


def test_containers_credentials_checks_each_entry() -> None:
    creds = ic.s3_static_credentials(access_key_id="AK", secret_access_key=SECRET)
    assert ic.containers_credentials({"s3://a/": creds, "s3://b/": None}) == {
        "s3://a/": creds,
        "s3://b/": None,
    }
    with pytest.raises(ic.InvalidVirtualContainerError, match=r"'s3://a/'.*not supported") as exc:
        ic.containers_credentials({"s3://a/": "AK:" + SECRET})  # type: ignore[dict-item]
    _assert_no_secret(str(exc.value))
    with pytest.raises(ic.InvalidVirtualContainerError, match="keys are container url prefixes"):
        ic.containers_credentials({7: None})  # type: ignore[dict-item]


def test_bad_authorisation_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    storage = ic.local_filesystem_storage(str(root))
    with pytest.raises(ic.InvalidVirtualContainerError):
        ic.Repository.create(storage, _config(), {"s3://archive/": object()})  # type: ignore[dict-item]
    assert not ic.Repository.exists(storage)
    with pytest.raises(ic.InvalidVirtualContainerError, match="takes a dict"):
        ic.Repository.create(storage, _config(), ["s3://archive/"])  # type: ignore[arg-type]
    ic.Repository.create(storage)
    with pytest.raises(ic.InvalidVirtualContainerError):
        ic.Repository.open(storage, authorize_virtual_chunk_access={"s3://a/": 1})  # type: ignore[dict-item]
