"""Container prefixes: Icechunk's rules, each broken prefix refused with a message naming it
and the rule; valid ones (unicode, percent escapes, ports, IPv6 hosts) accepted as given."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import icechunk_lib as ic
from icechunk_lib.format.containers import AnyObjectStoreConfig

STORES: dict[str, AnyObjectStoreConfig] = {
    "s3": ic.s3_store(region="us-east-1"),
    "s3_compatible": ic.s3_store(endpoint_url="http://localhost:9000", s3_compatible=True),
    "tigris": ic.ObjectStoreConfig.Tigris(ic.S3Options()),
    "gcs": ic.gcs_store(),
    "azure": ic.azure_store(account="acct"),
    "http": ic.http_store(),
    "file": ic.local_filesystem_store("/data"),
}
SCHEMES = {
    "s3": ["s3"],
    "s3_compatible": ["s3"],
    "tigris": ["s3", "tigris"],
    "gcs": ["gs", "gcs"],
    "azure": ["az", "azure", "abfs"],
    "http": ["http", "https"],
    "file": ["file"],
}
ALL_SCHEMES = sorted({s for schemes in SCHEMES.values() for s in schemes})

segments = st.text(
    st.characters(
        blacklist_categories=("Cs", "Cc"), blacklist_characters="/?#\\%", max_codepoint=0x2FFFF
    ),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in (".", ".."))
"""Path segments: unicode, spaces, dots inside names; never '.' or '..'."""
escaped = st.sampled_from(["%20", "%C3%A9", "%2B", "%25", "%7E"])
"""Percent escapes of harmless characters (a space, 'é', '+', '%', '~')."""
path_segments = st.lists(st.one_of(segments, st.tuples(segments, escaped).map("".join)), max_size=4)
hosts = st.one_of(
    st.from_regex(r"[a-z0-9][a-z0-9.-]{0,20}[a-z0-9]", fullmatch=True),
    st.sampled_from(["[::1]", "[2001:db8::7]", "[::ffff:192.0.2.1]", "bücher.example"]),
)
ports = st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}"))


@st.composite
def valid_prefixes(draw: st.DrawFn) -> tuple[str, str]:
    """(store kind, a prefix it accepts)."""
    kind = draw(st.sampled_from(sorted(STORES)))
    scheme = draw(st.sampled_from(SCHEMES[kind]))
    path = draw(path_segments)
    if kind == "file":
        path = path or ["data"]
        return kind, f"file:///{'/'.join(path)}/"
    trailing = "/".join(path) + "/" if path else ""
    return kind, f"{scheme}://{draw(hosts)}{draw(ports)}/{trailing}"


def _refused(kind: str, prefix: str, words: str) -> None:
    with pytest.raises(ic.InvalidVirtualContainerError) as exc:
        ic.VirtualChunkContainer(prefix, STORES[kind])
    message = str(exc.value)
    assert repr(prefix) in message, message
    assert words in message, message
    assert exc.value.url_prefix == prefix
    assert isinstance(exc.value, ic.ConfigError) and isinstance(exc.value, ValueError)


@given(valid_prefixes())
def test_valid_prefixes_are_accepted_as_given(case: tuple[str, str]) -> None:
    kind, prefix = case
    container = ic.VirtualChunkContainer(prefix, STORES[kind])
    assert container.url_prefix == prefix
    config = ic.RepositoryConfig()
    config.set_virtual_chunk_container(container)
    assert config.get_virtual_chunk_container(prefix) == container
    assert config.validate() is config


@given(valid_prefixes())
def test_a_prefix_without_its_trailing_slash(case: tuple[str, str]) -> None:
    kind, prefix = case
    if prefix.endswith("//"):  # still ends in '/' without one
        return
    _refused(kind, prefix[:-1], "must end in '/'")


@given(valid_prefixes(), st.data())
def test_a_scheme_of_another_store(case: tuple[str, str], data: st.DataObject) -> None:
    kind, prefix = case
    scheme = prefix.split(":", 1)[0]
    other = data.draw(st.sampled_from([s for s in ALL_SCHEMES if s not in SCHEMES[kind]]))
    _refused(kind, other + prefix[len(scheme) :], f"its scheme {other!r} does not match")


@given(valid_prefixes())
def test_an_uppercase_scheme(case: tuple[str, str]) -> None:
    kind, prefix = case
    scheme = prefix.split(":", 1)[0]
    _refused(kind, scheme.upper() + prefix[len(scheme) :], "must be lowercase")


@given(valid_prefixes(), st.data())
def test_a_dot_segment_percent_encoded_or_not(case: tuple[str, str], data: st.DataObject) -> None:
    kind, prefix = case
    dots = data.draw(st.sampled_from([".", "..", "%2e", "%2E%2e", ".%2E", "%2e.", "%2E"]))
    _refused(kind, f"{prefix}{dots}/", "'.' or '..' path segment")
    if prefix.count("/") > 3:  # a dot segment in the middle, too
        head, tail = prefix.rstrip("/").rsplit("/", 1)
        _refused(kind, f"{head}/{dots}/{tail}/", "'.' or '..' path segment")


@given(valid_prefixes(), st.sampled_from(["?", "#", "?x=1", "#frag"]))
def test_a_query_or_fragment(case: tuple[str, str], tail: str) -> None:
    kind, prefix = case
    _refused(kind, f"{prefix}x{tail}/", "query or fragment")


@given(valid_prefixes(), st.sampled_from(["%", "%g0", "%0", "%%41"]))
def test_a_malformed_percent_escape(case: tuple[str, str], bad: str) -> None:
    kind, prefix = case
    _refused(kind, f"{prefix}x{bad}z/", "malformed percent escape")


@given(valid_prefixes(), st.sampled_from(["\x00", "\n", "\t", "\x7f", "\x85"]))
def test_a_control_character(case: tuple[str, str], char: str) -> None:
    kind, prefix = case
    _refused(kind, f"{prefix}a{char}b/", "control character")
    if char.isascii():
        _refused(kind, f"{prefix}a%{ord(char):02X}z/", "percent-encoded control character")


@given(valid_prefixes())
def test_a_backslash(case: tuple[str, str]) -> None:
    kind, prefix = case
    _refused(kind, f"{prefix}a\\b/", "backslash")
    _refused(kind, f"{prefix}a%5Cb/", "backslash")


@pytest.mark.parametrize("kind", sorted(k for k in STORES if k != "file"))
@pytest.mark.parametrize("path", ["/", "/a/", "//"])
def test_every_scheme_but_file_has_a_host(kind: str, path: str) -> None:
    for scheme in SCHEMES[kind]:
        _refused(kind, f"{scheme}://{path}", f"must include a host ({scheme}://host/...)")


@pytest.mark.parametrize("kind", sorted(k for k in STORES if k != "file"))
@pytest.mark.parametrize("userinfo", ["user@", "user:secret@", ":@"])
def test_no_user_name_or_password_in_a_prefix(kind: str, userinfo: str) -> None:
    scheme = SCHEMES[kind][0]
    _refused(kind, f"{scheme}://{userinfo}host/", "user name or password")


@pytest.mark.parametrize(
    ("authority", "words"),
    [
        ("host:0", "invalid port '0'"),
        ("host:65536", "invalid port '65536'"),
        ("host:http", "invalid port 'http'"),
        ("host:", "invalid port ''"),
        ("[::1", "invalid IPv6 host"),
        ("[zz::1]", "invalid IPv6 host"),
        ("ho st", "invalid host 'ho st'"),
        ("ho%20st", "invalid host"),
    ],
)
def test_bad_hosts_and_ports(authority: str, words: str) -> None:
    _refused("http", f"https://{authority}/data/", words)


@pytest.mark.parametrize(
    ("prefix", "words"),
    [
        ("file:///", "must include a path below the root"),
        ("file://host/data/", "a file:// prefix has no host ('host')"),
        ("file://localhost/data/", "a file:// prefix has no host"),
        ("file:data/", "must start with file://"),
        ("file:/data/", "must start with file://"),
        ("file:///data//more/", "empty path segment"),
        ("file:///data/%2e%2e/", "'.' or '..' path segment"),
        ("file:///data/./", "'.' or '..' path segment"),
        ("file:///data", "must end in '/'"),
        ("/data/", "has no scheme"),
        ("data/", "has no scheme"),
        ("", "has no scheme"),
    ],
)
def test_file_prefixes_are_absolute_local_paths(prefix: str, words: str) -> None:
    _refused("file", prefix, words)


@pytest.mark.parametrize(
    "prefix",
    [
        "file:///data/",
        "file:///data/sub dir/",
        "file:///données/été/",
        "file:///data/x%20y/",
        "file:///a.b/..c/d../",
    ],
)
def test_file_edge_cases_accepted(prefix: str) -> None:
    assert ic.VirtualChunkContainer(prefix, STORES["file"]).url_prefix == prefix


@pytest.mark.parametrize(
    "prefix",
    ["s3://bucket/", "s3://bucket//", "s3://my.bucket/a/b/", "s3://[::1]:9000/b/"],
)
def test_object_store_edge_cases_accepted(prefix: str) -> None:
    assert ic.VirtualChunkContainer(prefix, STORES["s3"]).url_prefix == prefix


def test_in_memory_stores_serve_no_prefix() -> None:
    with pytest.raises(ic.InvalidVirtualContainerError, match="serves no URL prefix"):
        ic.VirtualChunkContainer("memory://x/", ic.ObjectStoreConfig.InMemory())


@pytest.mark.parametrize("prefix", [None, 7, b"s3://b/"])
def test_a_prefix_is_text(prefix: object) -> None:
    with pytest.raises(ic.InvalidVirtualContainerError, match="must be text"):
        ic.VirtualChunkContainer(prefix, STORES["s3"])  # type: ignore[arg-type]


@pytest.mark.parametrize("store", [None, "s3", {"kind": "s3"}])
def test_the_store_is_an_object_store_config(store: object) -> None:
    with pytest.raises(ic.InvalidVirtualContainerError, match="must be an ObjectStoreConfig"):
        ic.VirtualChunkContainer("s3://b/", store)  # type: ignore[arg-type]
    with pytest.raises(ic.ConfigError, match="is not a store"):
        ic.ObjectStoreConfig()


@pytest.mark.parametrize(
    "option",
    [
        "access_key",
        "account_key",
        "sas_token",
        "client_secret",
        "bearer_token",
        "password",
        "service_account_key",
        "google_application_credentials",
        "Authorization",
    ],
)
def test_store_options_holding_credentials_are_refused(option: str) -> None:
    """Store options are saved in the repository; credentials never are."""
    secret = "s3cr3t-v4lue"
    for build in (ic.gcs_store, ic.http_store):
        with pytest.raises(ic.ConfigError, match="authorize_virtual_chunk_access") as exc:
            build({option: secret})
        assert repr(option) in str(exc.value) and secret not in str(exc.value)
    with pytest.raises(ic.ConfigError, match=repr(option)) as exc:
        ic.azure_store(account="acct", config={option: secret})
    assert secret not in str(exc.value)


def test_a_container_changed_after_construction_is_checked_when_set_or_saved() -> None:
    container = ic.VirtualChunkContainer("s3://bucket/", STORES["s3"])
    container.url_prefix = "s3://bucket"
    config = ic.RepositoryConfig()
    with pytest.raises(ic.InvalidVirtualContainerError, match="must end in '/'"):
        config.set_virtual_chunk_container(container)
    config.virtual_chunk_containers = {"s3://bucket": container}
    with pytest.raises(ic.InvalidVirtualContainerError, match="must end in '/'"):
        config.validate()
