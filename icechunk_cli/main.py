"""Entry point of ``ick``: the typer app, its commands, and how failures end.

Commands stay thin (parse, call one library function, render); each lives in
``icechunk_cli/commands/<verb>.py``. Nothing here imports ``icechunk_lib``, numpy or zarr:
commands import the library inside their functions, so ``ick --help`` starts fast.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import warnings
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError
from typer.core import TyperGroup

from icechunk_cli import errors, render
from icechunk_cli.commands import (
    branch,
    commit,
    config,
    diff,
    expire,
    gc,
    import_refs,
    init,
    log,
    ls,
    reflog,
    reset,
    rewrite_manifests,
    show,
    stats,
    tag,
    verify,
)
from icechunk_cli.params import (
    COMPLETE_ENV,
    JsonOpt,
    NoColorOpt,
    RepoOpt,
    StorageOptionOpt,
    UnsafeWritesOpt,
)

__all__ = ["app", "main"]


class IckGroup(TyperGroup):
    """The top-level group: runs a command and turns whatever it raises into an exit code.

    Doing this here (rather than around ``app()``) means typer's ``CliRunner`` sees exactly
    what a shell sees: the same one-line messages and the same exit codes.
    """

    _args: Sequence[str] = ()
    """The command line being run (to find --json when parsing it fails)."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: Any = None,
        **extra: Any,
    ) -> Any:
        render.reset_state()
        self._args = list(args)
        try:
            return super().make_context(info_name, args, parent, **extra)
        except ClickException as exc:
            raise self._usage_error(exc) from exc

    def invoke(self, ctx: Any) -> Any:
        shown, warnings.showwarning = warnings.showwarning, errors.show_warning
        _mark_on_return(self)
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except ClickException as exc:
            raise self._usage_error(exc) from exc
        except BrokenPipeError:
            raise  # `ick log | head`: typer exits quietly
        except Exception as exc:
            raise typer.Exit(errors.report(exc, as_json=render.wants_json_errors())) from exc
        except KeyboardInterrupt as exc:
            if render.outcome_reported():  # on the way out of a command that succeeded
                return None
            raise typer.Exit(errors.report(exc, as_json=render.wants_json_errors())) from exc
        finally:
            warnings.showwarning = shown

    def _usage_error(self, exc: ClickException) -> BaseException:
        """With --json, a usage error is the JSON error document; otherwise click shows it."""
        if isinstance(exc, NoArgsIsHelpError) or not (
            render.wants_json_errors() or _asks_for_json(self._args, self)
        ):
            return exc
        return typer.Exit(errors.report(exc, as_json=True))


def _mark_on_return(group: Any) -> None:
    """Wrap every command's function under ``group`` so that its return marks the outcome
    reported: a Ctrl-C that lands on the way out then leaves the exit code at 0."""
    for command in group.commands.values():
        if hasattr(command, "commands"):  # a group's own function runs before its command's
            _mark_on_return(command)
            continue
        callback = command.callback
        if callback is not None and not getattr(callback, "_marks_outcome", False):
            command.callback = _marking(callback)


def _marking(callback: Any) -> Any:
    """``callback``, marking the outcome reported when it returns."""

    @functools.wraps(callback)
    def marking(*args: Any, **kwargs: Any) -> Any:
        result = callback(*args, **kwargs)
        render.mark_outcome_reported()  # looked up here: tests interrupt right after it
        return result

    marking._marks_outcome = True  # type: ignore[attr-defined]
    return marking


def _asks_for_json(args: Sequence[str], group: Any) -> bool:
    """Whether ``--json`` is among the options, read as click reads them (parsing may stop
    before it): not as the value of an option that takes one, and not after the ``--`` of the
    command that runs. A group consumes its own ``--``: the next token still names the
    subcommand, whose options click parses (``ick -- diff a b --json``)."""
    takes_value = _value_options(group)
    command: Any = group
    after_dashes = False  # the running group saw `--`: its next token is a subcommand name
    tokens = iter(args)
    for arg in tokens:
        subcommands = getattr(command, "commands", None)
        if subcommands is not None and (after_dashes or not arg.startswith("-")):
            # An unknown name fails as a usage error; keep reading its options as given.
            command, after_dashes = subcommands.get(arg, _LEAF), False
            continue
        if arg == "--":
            if subcommands is None:
                return False
            after_dashes = True
        elif arg == "--json":
            return True
        elif arg in takes_value:
            next(tokens, None)  # `-n --` or `-R --json`: the next token is a value
    return False


_LEAF = object()
"""Stands for a command with no subcommands (an unknown name is read as one)."""


def _value_options(command: Any) -> set[str]:
    """Names of every option in the command tree that takes a value."""
    names: set[str] = set()
    for param in command.params:
        if param.param_type_name == "option" and not (
            getattr(param, "is_flag", False) or getattr(param, "count", False)
        ):
            names.update(param.opts)
    for sub in getattr(command, "commands", {}).values():
        names |= _value_options(sub)
    return names


app = typer.Typer(
    name="ick",
    cls=IckGroup,
    rich_markup_mode="markdown",  # help paragraphs reflow to the terminal width
    epilog="Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 conflict, 5 integrity "
    "problem, 130 interrupted. Details: docs/cli.md.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

HISTORY = "History"
CONTENT = "Content"
REFS = "Branches and tags"
REPOSITORY = "Repository"
MAINTENANCE = "Maintenance"

app.command("init", rich_help_panel=REPOSITORY)(init.init)
app.add_typer(config.app, name="config", rich_help_panel=REPOSITORY)
app.command("log", rich_help_panel=HISTORY)(log.log)
app.command("show", rich_help_panel=HISTORY)(show.show)
app.command("diff", rich_help_panel=HISTORY)(diff.diff)
app.command("reflog", rich_help_panel=HISTORY)(reflog.reflog)
app.command("ls", rich_help_panel=CONTENT)(ls.ls)
app.command("commit", rich_help_panel=CONTENT)(commit.commit)
app.command("import-refs", rich_help_panel=CONTENT)(import_refs.import_refs)
app.add_typer(branch.app, name="branch", rich_help_panel=REFS)
app.add_typer(tag.app, name="tag", rich_help_panel=REFS)
app.command("reset", rich_help_panel=REFS)(reset.reset)
app.command("verify", rich_help_panel=MAINTENANCE)(verify.verify)
app.command("stats", rich_help_panel=MAINTENANCE)(stats.stats)
app.command("expire", rich_help_panel=MAINTENANCE)(expire.expire)
app.command("gc", rich_help_panel=MAINTENANCE)(gc.gc)
app.command("rewrite-manifests", rich_help_panel=MAINTENANCE)(rewrite_manifests.rewrite_manifests)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"ick {version('ick')}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
    repo: RepoOpt = None,
    json: JsonOpt = False,
    no_color: NoColorOpt = False,
    storage_option: StorageOptionOpt = None,
    unsafe_writes: UnsafeWritesOpt = False,
) -> None:
    """Version control for Zarr array repositories: history, branches, tags and diffs.

    Every command takes -R/--repo URL (default: $ICK_REPO, then the repository containing
    the current directory), --storage-option KEY=VALUE, --unsafe-writes, --json and
    --no-color, before or after its name.

    On S3, with credentials from the AWS environment (AWS_ACCESS_KEY_ID, AWS_PROFILE, ...):

    * `ick -R s3://my-bucket/weather log`
    * on an S3-compatible server: `ick -R s3://my-bucket/weather --storage-option
      endpoint_url=http://localhost:9000 --storage-option allow_http=true init`
    """


def main() -> None:
    """Run ``ick`` (the console script)."""
    try:
        app()
    except KeyboardInterrupt:  # before or after a command runs (the group handles the rest)
        if render.outcome_reported():  # the command succeeded and said so
            sys.exit(errors.EXIT_OK)
        print("ick: error: interrupted", file=sys.stderr)
        sys.exit(errors.EXIT_INTERRUPTED)
    except Exception:
        if os.environ.get(COMPLETE_ENV):  # a malformed completion request: complete nothing
            sys.exit(errors.EXIT_ERROR)
        raise
    finally:
        _end_quietly()


def _end_quietly() -> None:
    """The outcome is reported: a late Ctrl-C must not change it, and the engine's loop
    is drained so that closing it at exit finds nothing pending (no "Task was destroyed")."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if "icechunk_lib._sync" in sys.modules:
        from icechunk_lib._sync import shutdown

        shutdown()


if __name__ == "__main__":
    main()
