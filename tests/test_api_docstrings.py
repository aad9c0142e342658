"""Every public method and property of ``Session`` and ``IcechunkStore`` says what it does."""

from __future__ import annotations

import inspect

import pytest

import icechunk_lib as ic


def _undocumented(cls: type) -> list[str]:
    missing = []
    for name in sorted(dir(cls)):
        if name.startswith("_"):
            continue
        owner = next(c for c in cls.__mro__ if name in vars(c))
        if not owner.__module__.startswith("icechunk_lib"):
            continue  # zarr's own, not overridden
        attr = inspect.getattr_static(cls, name)
        target = attr.fget if isinstance(attr, property) else attr
        if callable(target) and not (getattr(target, "__doc__", None) or "").strip():
            missing.append(name)
    return missing


@pytest.mark.parametrize("cls", [ic.Session, ic.IcechunkStore], ids=lambda c: c.__name__)
def test_every_public_method_has_a_docstring(cls: type) -> None:
    assert not _undocumented(cls)
