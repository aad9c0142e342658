"""``ick config show`` / ``ick config set KEY VALUE``: the repository's saved settings."""

from __future__ import annotations

import json as json_module
from collections.abc import Iterator, Mapping
from typing import Annotated, Any

import typer

from icechunk_cli import addressing
from icechunk_cli.params import (
    JsonOpt,
    NoColorOpt,
    RepoOpt,
    StorageOptionOpt,
    UnsafeWritesOpt,
    command_group,
)
from icechunk_cli.render import Column, Output

__all__ = ["app", "flatten"]

app = command_group("Show or change the repository configuration.")


@app.callback()
def configuration(
    ctx: typer.Context,
    repo: RepoOpt = None,
    json: JsonOpt = False,
    no_color: NoColorOpt = False,
    storage_option: StorageOptionOpt = None,
    unsafe_writes: UnsafeWritesOpt = False,
) -> None:
    """Show the repository configuration (same as `ick config show`); `set` changes it."""
    if ctx.invoked_subcommand is None:
        show(repo, json, no_color)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``{"compression": {"level": 3}}`` -> ``("compression.level", 3)``, sorted by key."""
    for key in sorted(tree):
        value = tree[key]
        if isinstance(value, Mapping):
            yield from flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _shown(value: Any) -> str:
    if isinstance(value, list | tuple):  # splitting rules and conditions: shown as JSON
        return json_module.dumps(value, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


@app.command("show")
def show(
    repo: RepoOpt = None,
    json: JsonOpt = False,
    no_color: NoColorOpt = False,
    storage_option: StorageOptionOpt = None,
    unsafe_writes: UnsafeWritesOpt = False,
) -> None:
    """Show every setting as KEY = VALUE (dotted keys, as `config set` takes them)."""
    out = Output(json=json, no_color=no_color)
    repository = addressing.open_repository(repo)
    settings = repository.config.to_dict()
    if out.json:
        out.emit({"config": settings})
        return
    out.table([Column("key"), Column("value")], [[k, _shown(v)] for k, v in flatten(settings)])


@app.command("set")
def set_value(
    key: Annotated[str, typer.Argument(metavar="KEY", help="Dotted key, e.g. compression.level.")],
    value: Annotated[
        str,
        typer.Argument(
            metavar="VALUE",
            help="New value, as text; rules and conditions as JSON (null unsets them).",
        ),
    ],
    repo: RepoOpt = None,
    json: JsonOpt = False,
    no_color: NoColorOpt = False,
    storage_option: StorageOptionOpt = None,
    unsafe_writes: UnsafeWritesOpt = False,
) -> None:
    """Change one setting and save the configuration in the repository.

    Manifest splitting rules and preload conditions (manifest.splitting,
    manifest.splitting.split_sizes, manifest.preload, manifest.preload.preload_if) take
    JSON in the form `config show --json` prints, e.g. manifest.splitting.split_sizes
    '[[{"kind": "name_matches", "regex": "^temp"}, [[{"kind": "axis", "axis": 0}, 24]]]]'.

    Someone else's concurrent change to another setting is kept; a concurrent change of the
    same setting is a conflict (exit 4) and nothing is saved.
    """
    out = Output(json=json, no_color=no_color)
    repository = addressing.open_repository(repo)
    previous, new = repository.set_config_value(key, value)
    if out.json:
        out.emit({"key": key, "value": new, "previous": previous})
        return
    out.line(out.text((key, "key"), " = ", _shown(new), (f"  (was {_shown(previous)})", "dim")))
