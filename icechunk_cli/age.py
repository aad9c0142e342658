"""``--older-than 7d|DATE``: an age before now, or an absolute time, as a UTC cut-off.

One rule for every maintenance command (``ick gc``, ``ick expire``): an age is a whole number
and a unit (``s``, ``m``, ``h``, ``d``, ``w``; ``90m``, ``36h``, ``7d``, ``2w``), several
may be joined (``1d12h``); a time is ISO 8601 (``2026-11-01``, ``2026-11-01T12:00``, with an
optional offset; no offset means UTC). A cut-off in the future is refused: it would judge
every object old, including the chunks of sessions writing now.
"""

from __future__ import annotations

import datetime as dt
import re

__all__ = ["cutoff_from", "describe_age", "older_than_option"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d{1,9})([smhdw])")
_AGE = re.compile(r"(?:\d{1,9}[smhdw])+")


def cutoff_from(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """The UTC moment ``text`` names: ``now`` minus an age, or an ISO 8601 time.

    Raises:
        ValueError: ``text`` is neither, or names a moment after ``now``; the message says
            what is accepted.
    """
    now = now or dt.datetime.now(dt.UTC)
    spelled = text.strip().lower()
    if _AGE.fullmatch(spelled):
        seconds = sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(spelled))
        try:
            return now - dt.timedelta(seconds=seconds)
        except OverflowError:
            raise ValueError(f"{text!r} reaches back before the year 1") from None
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is neither an age (like 90m, 36h, 7d, 2w or 1d12h) nor an ISO 8601 "
            "time (like 2026-11-01 or 2026-11-01T12:00:00+01:00)"
        ) from None
    if moment.utcoffset() is None:
        moment = moment.replace(tzinfo=dt.UTC)
    moment = moment.astimezone(dt.UTC)
    if moment > now:
        raise ValueError(f"{text!r} is in the future; give a time before now")
    return moment


def describe_age(cutoff: dt.datetime, now: dt.datetime | None = None) -> str:
    """``2026-11-20 12:00:00 UTC (7 days ago)``: how a cut-off is echoed back to the user."""
    now = now or dt.datetime.now(dt.UTC)
    seconds = max(0, int((now - cutoff).total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            ago = f"{count} {unit}{'s' if count != 1 else ''} ago"
            break
    else:
        ago = f"{seconds} second{'s' if seconds != 1 else ''} ago"
    return f"{cutoff.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC ({ago})"


def older_than_option(text: str) -> dt.datetime:
    """``cutoff_from`` for a command's ``--older-than``: a bad value is a usage error (exit 2)
    naming the option."""
    import typer

    try:
        return cutoff_from(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--older-than") from None
