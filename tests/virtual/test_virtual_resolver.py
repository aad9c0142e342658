"""The resolver the read path uses: a location -> (container, path, credentials), by the
longest declared prefix; undeclared, unauthorised and escaping locations each refused with
an error naming the location (and, for authorisation, exactly how to give it)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

import icechunk_lib as ic
from icechunk_lib.virtual import VirtualAccess, VirtualResolver

CREDS = ic.s3_static_credentials(access_key_id="AK", secret_access_key="virtual-secret")
CONTAINERS = [
    ic.VirtualChunkContainer("s3://archive/", ic.s3_store(region="us-east-1")),
    ic.VirtualChunkContainer("s3://archive/netcdf/", ic.s3_store(region="us-east-1")),
    ic.VirtualChunkContainer("https://data.example.org/files/", ic.http_store()),
    ic.VirtualChunkContainer("file:///data/", ic.local_filesystem_store("/data")),
]
DECLARED = {c.url_prefix: c for c in CONTAINERS}


def _resolver(auth: dict[str, ic.AnyContainerCredential | None] | None = None) -> VirtualResolver:
    if auth is None:
        auth = {
            "s3://archive/": CREDS,
            "s3://archive/netcdf/": None,
            "https://data.example.org/files/": None,
            "file:///data/": None,
        }
    return VirtualResolver(DECLARED, VirtualAccess(auth))


@pytest.mark.parametrize(
    ("location", "prefix", "path"),
    [
        ("s3://archive/2020/t.nc", "s3://archive/", "2020/t.nc"),
        ("s3://archive/netcdf/t.nc", "s3://archive/netcdf/", "t.nc"),
        ("s3://archive/netcdf/a/b/t.nc", "s3://archive/netcdf/", "a/b/t.nc"),
        ("s3://archive/netcdfs/t.nc", "s3://archive/", "netcdfs/t.nc"),  # whole segments only
        ("S3://archive/t.nc", "s3://archive/", "t.nc"),  # schemes are case-insensitive
        ("https://data.example.org/files/x%20y.h5", "https://data.example.org/files/", "x y.h5"),
        ("file:///data/grib/été.grib2", "file:///data/", "grib/été.grib2"),
        ("file:///data/a..b/c.", "file:///data/", "a..b/c."),
    ],
)
def test_the_longest_declared_prefix_wins(location: str, prefix: str, path: str) -> None:
    target = _resolver().resolve(location)
    assert target.container is DECLARED[prefix]
    assert target.path == path
    assert target.credentials is (CREDS if prefix == "s3://archive/" else None)


@pytest.mark.parametrize(
    "location",
    [
        "s3://other/t.nc",  # another bucket
        "s3://archiv/t.nc",
        "gs://archive/t.nc",  # another scheme, same bucket name
        "http://data.example.org/files/t.h5",  # http, not https
        "https://data.example.org.evil.com/files/t.h5",  # another host
        "https://data.example.org:8443/files/t.h5",  # another port
        "https://evil.com@data.example.org/files/t.h5",
        "https://data.example.org/other/t.h5",
        "file://host/data/t.grib",
        "file:///etc/passwd",
    ],
)
def test_an_undeclared_container_is_named(location: str) -> None:
    with pytest.raises(ic.VirtualContainerNotFoundError) as exc:
        _resolver().resolve(location)
    message = str(exc.value)
    assert repr(location) in message
    assert "set_virtual_chunk_container" in message and "'s3://archive/'" in message
    assert exc.value.location == location
    assert exc.value.declared == sorted(DECLARED, key=len, reverse=True)
    assert not isinstance(exc.value, KeyError | FileNotFoundError)  # zarr would fill it in


def test_nothing_declared() -> None:
    with pytest.raises(ic.VirtualContainerNotFoundError, match="declares none"):
        VirtualResolver(None, VirtualAccess()).resolve("s3://archive/x")


@pytest.mark.parametrize(
    "auth",
    [
        {},
        {"s3://archive": CREDS},  # Icechunk matches whole prefixes: no trailing slash, no match
        {"s3://archive/netcdf/": None},  # a longer prefix authorises only its own container
        {"S3://archive/": None},
    ],
)
def test_a_declared_but_unauthorised_container_says_how_to_authorise(
    auth: dict[str, ic.AnyContainerCredential | None],
) -> None:
    location = "s3://archive/2020/t.nc"
    with pytest.raises(ic.VirtualContainerNotAuthorizedError) as exc:
        _resolver(auth).resolve(location)
    message = str(exc.value)
    assert repr(location) in message and "'s3://archive/'" in message
    assert "authorize_virtual_chunk_access={'s3://archive/': None}" in message
    assert "virtual-secret" not in message
    assert (exc.value.location, exc.value.url_prefix) == (location, "s3://archive/")
    assert isinstance(exc.value, PermissionError)
    # The writer's check (declared, as Icechunk's set_virtual_ref does) still passes.
    container, path = _resolver(auth).container(location)
    assert (container.url_prefix, path) == ("s3://archive/", "2020/t.nc")


def test_s3_credentials_for_a_store_that_cannot_use_them() -> None:
    with pytest.raises(ic.InvalidVirtualContainerError, match="cannot use"):
        _resolver({"file:///data/": CREDS}).resolve("file:///data/x")


@pytest.mark.parametrize(
    ("location", "words"),
    [
        ("file:///data/../etc/passwd", "'.' or '..' path segment"),
        ("file:///data/%2e%2e/etc/passwd", "'.' or '..' path segment"),
        ("file:///data/%2E%2E/%2e%2E/etc/passwd", "'.' or '..' path segment"),
        ("file:///data/.%2e/etc", "'.' or '..' path segment"),
        ("file:///data/a%2F..%2F..%2Fetc", "'.' or '..' path segment"),
        ("file:///data/./x", "'.' or '..' path segment"),
        ("s3://archive/netcdf/../../other/x", "'.' or '..' path segment"),
        ("https://data.example.org/files/..", "'.' or '..' path segment"),
        ("file:///data//etc/passwd", "empty path segment"),
        ("file:///data/%2Fetc/passwd", "empty path segment"),
        ("https://data.example.org/files//evil.com/x", "empty path segment"),
        ("s3://archive/a//b", "empty path segment"),
        ("file:///data/", "names the container"),
        ("file:///data/x?y", "query or fragment"),
        ("https://data.example.org/files/x#y", "query or fragment"),
        ("file:///data/a\\..\\..\\etc", "backslash"),
        ("file:///data/a%5C..%5Cetc", "backslash"),
        ("file:///data/a%00b", "control character"),
        ("file:///data/a\nb", "control character"),
        ("file:///data/a%zz", "malformed percent escape"),
        ("/data/x", "not a URL"),
        ("data/x", "not a URL"),
        ("file:/data/x", "not a URL"),
        ("", "not a URL"),
    ],
)
def test_escaping_or_malformed_locations_are_refused(location: str, words: str) -> None:
    with pytest.raises(ic.InvalidVirtualLocationError) as exc:
        _resolver().resolve(location)
    assert repr(location) in str(exc.value) and words in str(exc.value)
    assert exc.value.location == location


def test_a_location_is_text() -> None:
    with pytest.raises(ic.InvalidVirtualLocationError, match="text"):
        _resolver().resolve(b"file:///data/x")  # type: ignore[arg-type]


# --- hypothesis over paths --------------------------------------------------------------------

segment = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/?#\\%"),
    min_size=1,
    max_size=10,
).filter(lambda s: s not in (".", ".."))
paths = st.lists(segment, min_size=1, max_size=5)
dots = st.sampled_from(["..", ".", "%2e%2e", "%2E%2E", ".%2e", "%2e.", "%2e", "%2E"])


@given(paths, st.booleans(), st.sampled_from(sorted(DECLARED)))
def test_paths_inside_a_container_resolve_to_themselves(
    segments: list[str], encode: bool, prefix: str
) -> None:
    raw = "/".join(quote(s, safe="") if encode else s for s in segments)
    target = _resolver().resolve(prefix + raw)
    assert target.container.url_prefix.startswith(prefix)  # it, or a longer one inside it
    assert target.container.url_prefix + target.path == prefix + "/".join(segments)


@given(paths, dots, st.data(), st.sampled_from(sorted(DECLARED)))
def test_a_dot_segment_anywhere_is_refused(
    segments: list[str], dot: str, data: st.DataObject, prefix: str
) -> None:
    at = data.draw(st.integers(0, len(segments)))
    escaping = [*segments[:at], dot, *segments[at:]]
    with pytest.raises(ic.InvalidVirtualLocationError, match=r"'\.' or '\.\.' path segment"):
        _resolver().resolve(prefix + "/".join(escaping))


@given(paths, st.sampled_from(["/", "%2F", "%2f"]), st.data(), st.sampled_from(sorted(DECLARED)))
def test_an_empty_segment_is_refused(
    segments: list[str], gap: str, data: st.DataObject, prefix: str
) -> None:
    at = data.draw(st.integers(0, len(segments) - 1))
    head = "".join(s + "/" for s in segments[:at])
    location = prefix + head + gap + "/".join(segments[at:])
    with pytest.raises(ic.InvalidVirtualLocationError, match="empty path segment"):
        _resolver().resolve(location)


# --- through a repository -----------------------------------------------------------------------


def test_a_repository_resolves_with_its_saved_containers_and_its_authorisation(
    tmp_path: Path,
) -> None:
    storage = ic.local_filesystem_storage(str(tmp_path / "repo"))
    config = ic.RepositoryConfig.default()
    for container in CONTAINERS:
        config.set_virtual_chunk_container(container)
    ic.Repository.create(storage, config)
    repo = ic.Repository.open(storage, authorize_virtual_chunk_access={"file:///data/": None})
    target = repo._virtual_resolver().resolve("file:///data/t.grib")
    assert (target.container, target.path, target.credentials) == (
        DECLARED["file:///data/"],
        "t.grib",
        None,
    )
    with pytest.raises(ic.VirtualContainerNotAuthorizedError):
        repo._virtual_resolver().resolve("s3://archive/t.nc")
    unauthorised = ic.Repository.open(storage)
    with pytest.raises(ic.VirtualContainerNotAuthorizedError):
        unauthorised._virtual_resolver().resolve("file:///data/t.grib")
