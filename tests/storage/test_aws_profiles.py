"""A bad AWS profile or config file is a clear ``StorageError`` naming it and the fix, never
an unexpected botocore error: run through the real ``ick`` (exit code 1), each in a fresh
process, as botocore reads the profile files once per process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import s3_servers
from s3_servers import S3Server

ROOT = Path(__file__).resolve().parents[2]
ICK = Path(sys.executable).parent / "ick"


def _ick_log(server: S3Server, tmp_path: Path, **aws: str) -> subprocess.CompletedProcess[str]:
    """``ick log`` on the test bucket with only ``aws`` for AWS settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        PYTHONPATH=str(ROOT),
        HOME=str(tmp_path),  # no ~/.aws of the machine's
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_ENDPOINT_URL=server.endpoint_url,
        AWS_REGION=s3_servers.REGION,
    )
    env.update(aws)
    url = f"s3://{s3_servers.BUCKET}/{server.fresh_prefix()}"
    args = [str(ICK), "-R", url, "log"]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)


def _check(done: subprocess.CompletedProcess[str], *named: str) -> str:
    assert done.returncode == 1, done.stderr
    message = done.stderr
    assert message.startswith("ick: error: "), message
    assert "unexpected" not in message and "Traceback" not in message, message
    for name in named:
        assert name in message, (name, message)
    assert s3_servers.SECRET_KEY not in message
    return message


def test_a_profile_that_does_not_exist(moto_server: S3Server, tmp_path: Path) -> None:
    message = _check(_ick_log(moto_server, tmp_path, AWS_PROFILE="nope"), "'nope'", "AWS_PROFILE")
    assert str(tmp_path / "no-config") in message  # where it was looked for


def test_a_profile_without_keys(moto_server: S3Server, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("[profile empty]\nregion = us-east-1\n")
    done = _ick_log(moto_server, tmp_path, AWS_PROFILE="empty", AWS_CONFIG_FILE=str(config))
    _check(done, "'empty'", "AWS_PROFILE", "aws_secret_access_key")


@pytest.mark.parametrize("variable", ["AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"])
def test_a_malformed_profile_file(moto_server: S3Server, tmp_path: Path, variable: str) -> None:
    bad = tmp_path / "bad-aws-file"
    bad.write_text("[default\naws_secret_access_key = not-shown\n")
    message = _check(_ick_log(moto_server, tmp_path, **{variable: str(bad)}), str(bad), variable)
    assert "not-shown" not in message


def test_a_profile_with_only_a_key_id(moto_server: S3Server, tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text("[half]\naws_access_key_id = AKIDHALF\n")
    done = _ick_log(
        moto_server, tmp_path, AWS_PROFILE="half", AWS_SHARED_CREDENTIALS_FILE=str(credentials)
    )
    _check(done, "'half'", "aws_secret_access_key")


def test_a_good_profile_works(moto_server: S3Server, tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[good]\naws_access_key_id = {s3_servers.ACCESS_KEY}\n"
        f"aws_secret_access_key = {s3_servers.SECRET_KEY}\n"
    )
    done = _ick_log(
        moto_server, tmp_path, AWS_PROFILE="good", AWS_SHARED_CREDENTIALS_FILE=str(credentials)
    )
    assert done.returncode == 3, done.stderr  # reached the server: no repository there
    assert "no ick repository at s3://" in done.stderr
