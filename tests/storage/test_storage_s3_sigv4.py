"""The SigV4 signer of the direct S3 path: AWS's documented examples, and botocore's own
signer as an oracle over many keys, headers, bodies and query strings (botocore signs a
request its client built; ours must give the same signature for the same request)."""

from __future__ import annotations

import hashlib
import pickle
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import botocore.session
import pytest
from botocore.config import Config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from icechunk_lib.storage._s3_http import CredentialSource, Route, rehomed, route_from_url
from icechunk_lib.storage._sigv4 import (
    EMPTY_SHA256,
    Keys,
    Signer,
    canonical_query,
    canonical_uri,
)

ACCESS = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DAY = "20130524T000000Z"
HOST = "examplebucket.s3.amazonaws.com"

# --- AWS's documented examples (Signature Version 4, "Examples: Signature Calculations") ---


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "body", "signature"),
    [
        (  # GET Object, a range
            "GET",
            "/test.txt",
            [],
            {"range": "bytes=0-9"},
            b"",
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
        ),
        (  # PUT Object: '$' encoded, a Date and a storage class signed too
            "PUT",
            "/test$file.text",
            [],
            {"date": "Fri, 24 May 2013 00:00:00 GMT", "x-amz-storage-class": "REDUCED_REDUNDANCY"},
            b"Welcome to Amazon S3.",
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
        ),
        (  # GET Bucket Lifecycle: a query name without a value
            "GET",
            "/",
            [("lifecycle", "")],
            {},
            b"",
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
        ),
        (  # GET Bucket (List Objects): two query parameters, sorted
            "GET",
            "/",
            [("prefix", "J"), ("max-keys", "2")],
            {},
            b"",
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        ),
    ],
)
def test_aws_documented_examples(
    method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    body: bytes,
    signature: str,
) -> None:
    signed = {"host": HOST, **headers}
    digest = hashlib.sha256(body).hexdigest()
    Signer("us-east-1").sign(
        method,
        canonical_uri(path),
        canonical_query(query),
        signed,
        Keys(ACCESS, SECRET),
        digest,
        DAY,
    )
    assert signed["authorization"].endswith(f", Signature={signature}")
    assert signed["authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential={ACCESS}/20130524/us-east-1/s3/aws4_request, SignedHeaders="
    )
    assert signed["x-amz-content-sha256"] == digest
    assert signed["x-amz-date"] == DAY


# --- botocore as the oracle -----------------------------------------------------------------


class _Captured(Exception):
    def __init__(self, request: Any) -> None:
        super().__init__("captured")
        self.request = request


def _capture(request: Any, **kwargs: Any) -> None:
    raise _Captured(request)


_CLIENTS: dict[tuple[str, bool, bool], Any] = {}


def _client(endpoint: str, path_style: bool, token: bool) -> Any:
    """A botocore S3 client that signs requests and, instead of sending them, raises."""
    found = _CLIENTS.get((endpoint, path_style, token))
    if found is None:
        session = botocore.session.Session()
        found = session.create_client(
            "s3",
            region_name="eu-west-3",
            endpoint_url=endpoint or None,
            aws_access_key_id=ACCESS,
            aws_secret_access_key=SECRET,
            aws_session_token="FwoGZXIvYXdzE+token/=" if token else None,
            config=Config(
                s3={"addressing_style": "path" if path_style else "virtual"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"total_max_attempts": 1},
            ),
        )
        found.meta.events.register_first("before-send.s3", _capture)
        _CLIENTS[(endpoint, path_style, token)] = found
    return found


def _botocore_request(client: Any, operation: str, **params: Any) -> Any:
    with pytest.raises(_Captured) as captured:
        getattr(client, operation)(**params)
    return captured.value.request


def _ours(request: Any, route: Route | None, key: str | None, token: bool) -> str:
    """Our authorization for the request botocore built (its date and headers)."""
    url = urlsplit(request.url)
    if route is not None and key is not None:
        target, uri = route.target(key)
        assert target == request.url.split("?")[0]  # the same URL botocore sends to
    else:
        uri = url.path
    theirs = _text(request.headers["Authorization"])
    # The headers botocore signed (it adds some after signing), less those ours adds.
    names = set(theirs.split("SignedHeaders=")[1].split(",")[0].split(";"))
    names -= {"x-amz-date", "x-amz-content-sha256", "x-amz-security-token", "host"}
    headers = {
        name.lower(): _text(value)
        for name, value in request.headers.items()
        if name.lower() in names
    }
    assert len(headers) == len(names)
    headers["host"] = url.netloc
    body = request.body or b""
    if hasattr(body, "read"):
        body.seek(0)
        body = body.read()
    digest = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
    query = canonical_query(parse_qsl(url.query, keep_blank_values=True))
    keys = Keys(ACCESS, SECRET, "FwoGZXIvYXdzE+token/=" if token else None)
    stamp = _text(request.headers["X-Amz-Date"])
    Signer("eu-west-3").sign(request.method, uri, query, headers, keys, digest, stamp)
    if token:
        assert headers["x-amz-security-token"] == _text(request.headers["X-Amz-Security-Token"])
    assert headers["x-amz-content-sha256"] == _text(request.headers["X-Amz-Content-SHA256"])
    return headers["authorization"]


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _route(client: Any, bucket: str, endpoint: str) -> Route:
    url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "ick-route"})
    return route_from_url(url, aws=not endpoint)


KEYS = st.text(
    alphabet="abcXYZ019-_.~ +%=&?#$@!*'(),;:[]{}<>|^`\"ü日本😀é\u00a0",
    min_size=1,
    max_size=30,
).map(lambda s: s.strip("/"))
SEGMENTED = st.lists(KEYS.filter(lambda s: s not in ("", ".", "..")), min_size=1, max_size=4).map(
    "/".join
)
ENDPOINTS = st.sampled_from(["", "https://minio.example.com:9000", "http://127.0.0.1:8333"])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    key=SEGMENTED,
    endpoint=ENDPOINTS,
    path_style=st.booleans(),
    token=st.booleans(),
    operation=st.sampled_from(["get_object", "head_object", "delete_object", "put_object"]),
    first=st.integers(0, 10**9),
    condition=st.sampled_from([{}, {"IfMatch": '"0a1b"'}, {"IfNoneMatch": "*"}]),
    body=st.binary(max_size=64),
    extras=st.fixed_dictionaries(
        {}, optional={"RequestPayer": st.just("requester"), "StorageClass": st.just("GLACIER_IR")}
    ),
)
def test_signatures_match_botocores(
    key: str,
    endpoint: str,
    path_style: bool,
    token: bool,
    operation: str,
    first: int,
    condition: dict[str, str],
    body: bytes,
    extras: dict[str, str],
) -> None:
    client = _client(endpoint, path_style, token)
    params: dict[str, Any] = {"Bucket": "ick-bucket", "Key": key}
    if "RequestPayer" in extras:
        params["RequestPayer"] = "requester"
    if operation == "get_object":
        params["Range"] = f"bytes={first}-{first + 99}"
        params.update({k: v for k, v in condition.items() if k == "IfMatch"})
    elif operation == "put_object":
        params.update(condition, Body=body)
        if "StorageClass" in extras:
            params["StorageClass"] = extras["StorageClass"]
    request = _botocore_request(client, operation, **params)
    route = _route(client, "ick-bucket", endpoint)
    assert _ours(request, route, key, token) == _text(request.headers["Authorization"])


@settings(max_examples=60, deadline=None)
@given(prefix=KEYS, start_after=KEYS, token=st.booleans(), endpoint=ENDPOINTS)
def test_query_strings_sign_as_botocores(
    prefix: str, start_after: str, token: bool, endpoint: str
) -> None:
    client = _client(endpoint, True, token)
    request = _botocore_request(
        client,
        "list_objects_v2",
        Bucket="ick-bucket",
        Prefix=prefix,
        StartAfter=start_after,
        MaxKeys=7,
    )
    assert _ours(request, None, None, token) == _text(request.headers["Authorization"])


# --- pieces ----------------------------------------------------------------------------------


def test_canonical_uri_encodes_each_segment_once() -> None:
    assert canonical_uri("/b/a b/c+d%e/f=g&h?i#j~k/ü") == (
        "/b/a%20b/c%2Bd%25e/f%3Dg%26h%3Fi%23j~k/%C3%BC"
    )
    assert canonical_uri("/b/./x/../y") == "/b/./x/../y"  # never normalised


def test_canonical_query_encodes_slashes_and_sorts() -> None:
    assert canonical_query([("prefix", "a/b c"), ("list-type", "2"), ("b~", "")]) == (
        "b~=&list-type=2&prefix=a%2Fb%20c"
    )


def test_the_signing_key_is_derived_once_per_day_and_secret() -> None:
    signer = Signer("us-east-1")
    keys = Keys(ACCESS, SECRET)
    signer.sign("GET", "/k", "", {"host": HOST}, keys, date=DAY)
    first = signer._cached
    signer.sign("GET", "/j", "", {"host": HOST}, keys, date="20130524T235959Z")
    assert signer._cached is first
    signer.sign("GET", "/j", "", {"host": HOST}, keys, date="20130525T000000Z")
    assert signer._cached is not first
    other = Keys(ACCESS, "another-secret")
    a = {"host": HOST}
    signer.sign("GET", "/j", "", a, other, date="20130525T000000Z")
    b = {"host": HOST}
    Signer("us-east-1").sign("GET", "/j", "", b, other, date="20130525T000000Z")
    assert a["authorization"] == b["authorization"]


def test_secrets_are_never_shown_or_pickled() -> None:
    keys = Keys(ACCESS, SECRET, "session-token-secret")
    assert SECRET not in repr(keys)
    assert "session-token-secret" not in repr(keys)
    signer = Signer("us-east-1")
    signer.sign("GET", "/k", "", {"host": HOST}, keys, date=DAY)
    source = CredentialSource(keys)
    for thing in (keys, signer, source):
        assert SECRET not in repr(thing)
        with pytest.raises(TypeError):
            pickle.dumps(thing)


def test_a_session_token_is_signed() -> None:
    headers = {"host": HOST}
    Signer("us-east-1").sign("GET", "/k", "", headers, Keys(ACCESS, SECRET, "tok"), date=DAY)
    assert headers["x-amz-security-token"] == "tok"
    assert "x-amz-security-token" in headers["authorization"].split("SignedHeaders=")[1]


# --- routes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "origin", "host", "path"),
    [
        (
            "https://bkt.s3.amazonaws.com/ick-route?X-Amz-Signature=x",
            "https://bkt.s3.amazonaws.com",
            "bkt.s3.amazonaws.com",
            "/",
        ),
        ("http://127.0.0.1:8333/bkt/ick-route", "http://127.0.0.1:8333", "127.0.0.1:8333", "/bkt/"),
        (
            "https://h.example:443/base/bkt/ick-route",
            "https://h.example",
            "h.example",
            "/base/bkt/",
        ),
    ],
)
def test_routes_from_botocores_urls(url: str, origin: str, host: str, path: str) -> None:
    route = route_from_url(url, aws=False)
    assert (route.origin, route.host, route.path) == (origin, host, path)
    assert route.target("a b/c") == (f"{origin}{path}a%20b/c", f"{path}a%20b/c")


@pytest.mark.parametrize(
    ("host", "moved"),
    [
        ("bkt.s3.amazonaws.com", "bkt.s3.eu-west-3.amazonaws.com"),
        ("bkt.s3.us-east-1.amazonaws.com", "bkt.s3.eu-west-3.amazonaws.com"),
        ("s3.us-west-2.amazonaws.com", "s3.eu-west-3.amazonaws.com"),
        ("bkt.s3.dualstack.us-east-1.amazonaws.com", "bkt.s3.dualstack.eu-west-3.amazonaws.com"),
    ],
)
def test_an_aws_route_moves_to_the_buckets_region(host: str, moved: str) -> None:
    route = Route(f"https://{host}", host, "/", aws=True)
    assert rehomed(route, "eu-west-3") == Route(f"https://{moved}", moved, "/", aws=True)
