"""Lazy exports: a package maps each public name to its module once, and loads it on first use.

``icechunk_lib`` and ``icechunk_lib.format`` both export names from modules that are costly to
import (numpy, zarr); PEP 562's module ``__getattr__`` lets ``import icechunk_lib`` stay cheap.
A package builds one ``LazyExports`` from its table (name -> module) and takes ``__all__``,
``__getattr__`` and ``__dir__`` from it, so the table is the only list of names to keep. This
module imports nothing but the standard library, so every layer (``format`` included) may use it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["LazyExports", "export_order"]


def export_order(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps ``__all__`` in: CONSTANTS, then Classes, then the rest."""
    if len(name) > 1 and name.isupper():
        return 0, name
    if name[0].isupper():
        return 1, name
    return 2, name


class LazyExports:
    """The public names of one package, each loaded from its module when first asked for.

    ``targets`` maps each public name to the module that defines it; ``eager`` names values
    the package defines itself (such as ``__version__``), listed in ``__all__`` only.
    """

    def __init__(
        self, namespace: dict[str, Any], targets: Mapping[str, str], *, eager: Iterable[str] = ()
    ) -> None:
        self._namespace = namespace
        self._package = str(namespace["__name__"])
        self.targets = dict(targets)
        self.names: list[str] = sorted([*self.targets, *eager], key=export_order)

    def getattr(self, name: str) -> Any:
        """PEP 562 ``__getattr__``: import the name's module, keep the value, return it."""
        module = self.targets.get(name)
        if module is None:
            raise AttributeError(f"module {self._package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        self._namespace[name] = value  # later lookups find it without calling back here
        return value

    def dir(self) -> list[str]:
        """PEP 562 ``__dir__``: the public names, not the loader's helpers."""
        return sorted(self.names)
