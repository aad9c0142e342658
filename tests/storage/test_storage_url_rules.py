"""The one rule telling a URL from a local path, and the one redaction of URLs for messages.

Storage, the importer and ``ick commit --from`` all classify with ``url_scheme``, so a string
is a URL (or a path) in all three alike, hostile or not.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from icechunk_lib.errors import InvalidStorageURLError
from icechunk_lib.storage import LocalFileSystemStorage, storage_from_url
from icechunk_lib.storage.url import redact_url, url_scheme

SECRET = "s3cr3t-value"


@pytest.mark.parametrize(
    ("text", "scheme"),
    [
        ("s3://bucket/prefix", "s3"),
        ("S3://Bucket", "s3"),
        ("s3:x", "s3"),  # no '//' is still a URL: write ./s3:x for a path
        ("s3:", "s3"),
        ("file:relative", "file"),
        ("file:///abs", "file"),
        ("memory://", "memory"),
        ("c++:x", "c++"),
        ("git+ssh://host/x", "git+ssh"),
        ("simplecache::s3://b/k", "simplecache"),
        ("C:\\x", None),  # a Windows drive letter: one letter is never a scheme
        ("c:/x", None),
        ("./s3://x", None),
        ("/abs/s3://x", None),
        ("s3", None),
        ("", None),
        ("   ", None),
        (" s3://x", None),  # leading whitespace: a (strange) path, never trimmed into a URL
        ("\ts3://x", None),
        ("s3 ://x", None),
        ("1s:x", None),
        ("+s:x", None),
        ("-s:x", None),
        ("é:x", None),
        ("\u017f3://x", None),  # LATIN SMALL LETTER LONG S, which upper()s to 'S'
        ("s\u0663://x", None),  # an Arabic-Indic digit
        ("\uff53\uff13://x", None),  # fullwidth 's3'
        ("K\u212a://x", None),  # KELVIN SIGN, which lower()s to 'k'
        ("~/s3:x", None),
        ("s3\x00://x", None),
    ],
)
def test_url_scheme(text: str, scheme: str | None) -> None:
    assert url_scheme(text) == scheme


def test_path_objects_are_paths() -> None:
    assert url_scheme(Path("s3://x")) is None  # a PathLike is a path whatever it spells


@pytest.mark.parametrize(
    ("text", "path_like"),
    [("./s3:x", True), ("C:\\x", True), ("s3:x", False), ("file:relative", False)],
)
def test_storage_follows_the_rule(text: str, path_like: bool, tmp_path: Path) -> None:
    if path_like:
        assert isinstance(storage_from_url(text), LocalFileSystemStorage)
    else:
        with pytest.raises(InvalidStorageURLError):
            storage_from_url(text)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"s3://AKIA:{SECRET}@bucket/prefix", "s3://***@bucket/prefix"),
        (f"s3://AKIA%3A{SECRET}%40x@bucket/p", "s3://***@bucket/p"),  # percent-encoded
        (f"s3://user@x:{SECRET}@bucket/p", "s3://***@bucket/p"),  # '@' inside the secret
        (f"s3://{SECRET}/x@bucket", "s3://***@bucket"),  # '/' inside the secret
        (f"s3:AKIA:{SECRET}@bucket/p", "s3:***@bucket/p"),  # no '//'
        (f"s3:/AKIA:{SECRET}@bucket/p", "s3:/***@bucket/p"),
        (f"https://host/k?X-Amz-Signature={SECRET}", "https://host/k?***"),
        (
            f"https://host/k?X-Amz-Credential=AKIA%2F2024&X-Amz-Signature={SECRET}",
            "https://host/k?***",
        ),
        (f"https://acct.blob.core.windows.net/c?sv=2020&sig={SECRET}", None),
        (f"gs://bucket/key?token={SECRET}#frag", "gs://bucket/key?***"),
        (f"file:///tmp/repo#{SECRET}", "file:///tmp/repo#***"),
        (f"memory://:{SECRET}@name/extra?more={SECRET}", "memory://***@name/extra?***"),
        ("s3://bucket/plain/key", "s3://bucket/plain/key"),
        ("memory://name", "memory://name"),
        ("./not@a/url?x", "./not@a/url?x"),  # a path is shown as it is
        ("", ""),
    ],
)
def test_redact_url(url: str, shown: str | None) -> None:
    redacted = redact_url(url)
    assert SECRET not in redacted
    assert "AKIA" not in redacted
    if shown is not None:
        assert redacted == shown
    assert redact_url(redacted) == redacted  # redacting twice changes nothing more
