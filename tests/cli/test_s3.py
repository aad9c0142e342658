"""``ick -R s3://...`` end to end: the real executable against the real S3 test servers.

Credentials come from the AWS environment variables, the endpoint from ``--storage-option``
(or ``AWS_ENDPOINT_URL``); the secret key must never show in anything ick prints.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import s3_servers
from s3_servers import S3Server

from .conftest import CLEAN_ENV
from .test_content import write_store
from .test_e2e import ICK


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The ick executable with exactly the AWS variables in ``env`` (none inherited)."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if CLEAN_ENV.get(k, "") is not None and not k.startswith("AWS_")
    }
    environ.update(env)
    return subprocess.run(
        [str(ICK), *args], capture_output=True, text=True, env=environ, timeout=120
    )


def credentials(**extra: str) -> dict[str, str]:
    """The AWS environment of a user with the test server's credentials."""
    return {
        "AWS_ACCESS_KEY_ID": s3_servers.ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": s3_servers.SECRET_KEY,
        "AWS_REGION": s3_servers.REGION,
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        **extra,
    }


class S3Ick:
    """Runs the ``ick`` executable on one repository URL, checking no output holds the secret."""

    def __init__(self, server: S3Server, url: str, env: dict[str, str] | None = None) -> None:
        self.url = url
        self.env = credentials(**(env or {}))
        self.options = [
            "--storage-option",
            f"endpoint_url={server.endpoint_url}",
            "--storage-option",
            "allow_http=true",
            "--storage-option",
            "force_path_style=true",
        ]

    def __call__(self, *args: str, options: bool = True) -> subprocess.CompletedProcess[str]:
        extra = self.options if options else []
        done = run("-R", self.url, *extra, *args, env=self.env)
        assert s3_servers.SECRET_KEY not in done.stdout + done.stderr, args
        return done

    def json(self, *args: str) -> dict[str, object]:
        done = self(*args, "--json")
        assert done.returncode == 0, done.stderr
        doc: dict[str, object] = json.loads(done.stdout)
        return doc


def test_init_commit_log_tag_branch_ls_on_s3(s3_server: S3Server, tmp_path: Path) -> None:
    url = f"s3://{s3_servers.BUCKET}/{s3_server.fresh_prefix()}/repo"
    ick = S3Ick(s3_server, url)
    created = ick.json("init")
    assert created["url"] == url
    source = tmp_path / "source.zarr"
    write_store(source)
    committed = ick.json("commit", "-m", "Import the model", "--from", str(source), "--yes")
    assert committed["committed"] is True
    log = ick.json("log")
    assert [e["message"] for e in log["snapshots"]] == [  # type: ignore[index]
        "Import the model",
        "Repository initialized",
    ]
    ick.json("tag", "create", "v1")
    ick.json("branch", "create", "dev", "v1")
    branches = ick.json("branch", "list")["branches"]
    assert [b["name"] for b in branches] == ["dev", "main"]  # type: ignore[index, union-attr]
    assert [t["name"] for t in ick.json("tag")["tags"]] == ["v1"]  # type: ignore[index, union-attr]
    listing = ick("ls", "-r", "dev")
    assert listing.returncode == 0, listing.stderr
    assert "temps" in listing.stdout
    assert "counts" in listing.stdout
    again = ick("init")
    assert again.returncode == 4, again.stderr  # the location holds a repository


def test_the_aws_environment_alone_is_enough(moto_server: S3Server) -> None:
    url = f"s3://{s3_servers.BUCKET}/{moto_server.fresh_prefix()}"
    env = {"AWS_ENDPOINT_URL": moto_server.endpoint_url}
    ick = S3Ick(moto_server, url, env)
    init = ick("init", options=False)
    assert init.returncode == 0, init.stderr
    log = ick("log", "--oneline", options=False)
    assert log.returncode == 0, log.stderr
    assert "Repository initialized" in log.stdout


@pytest.mark.parametrize(
    ("url", "options", "code", "words"),
    [
        ("s3://Not_A_Bucket/x", [], 2, "not a valid S3 bucket name"),
        ("s3://bucket/a//b", [], 2, "empty, '.' or '..' segment"),
        ("s3://{bucket}/x", ["no_such_key=1"], 2, "unknown storage option 'no_such_key'"),
        ("s3://{bucket}/x", ["allow_http=maybe"], 2, "bad value 'maybe' for storage option"),
        ("s3://{bucket}/x", ["secret_acess_key={secret}"], 2, "known: access_key_id"),
        ("s3://ick-no-such-bucket/x", [], 3, "ick-no-such-bucket"),
        ("s3://{bucket}/never/made", [], 3, "no ick repository at s3://"),
        ("gs://bucket/x", [], 2, 'pip install "ick[gcs]"'),
    ],
)
def test_errors_have_their_exit_codes_and_hide_the_secret(
    moto_server: S3Server, url: str, options: list[str], code: int, words: str
) -> None:
    url = url.format(bucket=s3_servers.BUCKET)
    ick = S3Ick(moto_server, url)
    extra = [
        item
        for option in options
        for item in ("--storage-option", option.format(secret=s3_servers.SECRET_KEY))
    ]
    for args in (["log"], ["tag", "create", "t", "--json"]):
        done = ick(*extra, *args)
        assert done.returncode == code, (args, done.stderr)
        if "--json" in args:
            error = json.loads(done.stderr)["error"]
            assert error["exit_code"] == code
            assert words in error["message"], error
        else:
            assert words in done.stderr, done.stderr
        assert done.stdout == ""


def test_a_secret_given_as_an_option_never_shows(moto_server: S3Server) -> None:
    url = f"s3://{s3_servers.BUCKET}/{moto_server.fresh_prefix()}"
    ick = S3Ick(moto_server, url)
    del ick.env["AWS_SECRET_ACCESS_KEY"], ick.env["AWS_ACCESS_KEY_ID"]
    secret = ["--storage-option", f"secret_access_key={s3_servers.SECRET_KEY}"]
    key = ["--storage-option", f"access_key_id={s3_servers.ACCESS_KEY}"]
    assert ick(*secret, *key, "init").returncode == 0
    for args in (["log", "--json"], ["log", "nope"], ["branch", "delete", "main"], ["show"]):
        done = ick(*secret, *key, *args, "--storage-option", "region=us-east-1")
        assert s3_servers.SECRET_KEY not in done.stdout + done.stderr
    debug = run(
        "-R", url, *ick.options, *secret, *key, "log", "nope", env={**ick.env, "ICK_DEBUG": "1"}
    )
    assert "Traceback" in debug.stderr
    assert s3_servers.SECRET_KEY not in debug.stdout + debug.stderr


def test_a_server_ignoring_conditions_is_refused_until_unsafe_writes(
    moto_server: S3Server,
) -> None:
    from s3_proxy import S3FaultProxy

    url = f"s3://{s3_servers.BUCKET}/{moto_server.fresh_prefix()}"
    with S3FaultProxy(moto_server.endpoint_url) as proxy:
        proxy.strip_conditions()
        ick = S3Ick(moto_server, url)
        ick.options[1] = f"endpoint_url={proxy.endpoint_url}"
        refused = ick("init")
        assert refused.returncode == 1, refused.stderr
        assert "--unsafe-writes" in refused.stderr
        for args in (["init"], ["tag", "create", "v1"]):
            allowed = ick("--unsafe-writes", *args)
            assert allowed.returncode == 0, allowed.stderr
            warning = [line for line in allowed.stderr.splitlines() if "warning" in line.lower()]
            assert len(warning) == 1, allowed.stderr
            assert warning[0].startswith("ick: warning: writing to s3://")
            assert "overwrite each other's commits" in warning[0]
    ick.options[1] = f"endpoint_url={moto_server.endpoint_url}"  # the server itself
    assert [t["name"] for t in ick.json("tag")["tags"]] == ["v1"]  # type: ignore[index, union-attr]
