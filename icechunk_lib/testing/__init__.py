"""Test kits shipped with ick, as zarr ships ``zarr.testing``: import them from your tests.

``StorageTests`` is the contract of ``icechunk_lib.storage.Storage``; subclass it and provide a
``storage`` fixture to check your own backend (see ``icechunk_lib.testing.storage``);
``LostReplyTests`` adds the rules for replies lost after a write, for backends that retry. This
package needs pytest and pytest-asyncio (``pip install "ick[testing]"``); nothing else in
``icechunk_lib`` imports it.
"""

from __future__ import annotations

from icechunk_lib.testing.storage import LostReplyTests, StorageTests

__all__ = ["LostReplyTests", "StorageTests"]
