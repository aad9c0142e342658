"""Whether a repository may write to its storage: the atomic operations, probed once.

Writers need atomic create-if-absent and compare-and-swap, or racing ones can lose each
other's updates (DESIGN.md). A backend that cannot know whether its server honours them
(S3 with a custom endpoint) asks the server once (``Storage.probe_capabilities``); one
without them is refused for writing, unless the user opted into unsafe writes, and then one
``UnsafeWritesWarning`` per repository says what can be lost.
"""

from __future__ import annotations

import warnings

from icechunk_lib.errors import UnsafeWritesWarning
from icechunk_lib.storage import Storage, StorageCapabilities

__all__ = ["UNSAFE_WRITES_RISK", "WriteAccess"]

UNSAFE_WRITES_RISK = (
    "writers racing on one branch can overwrite each other's commits (the lost ones stay "
    "in storage, unreachable), and a tag can be created twice, the later one replacing the "
    "earlier"
)
"""What unsafe writes can lose, as the warning says it."""


class WriteAccess:
    """The write check of one repository (shared with its sessions): probes the storage
    once, refuses writes it cannot make safely, and warns once about unsafe ones."""

    __slots__ = ("_capabilities", "_storage", "_warned")

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._capabilities: StorageCapabilities | None = None
        self._warned = False

    @property
    def capabilities(self) -> StorageCapabilities | None:
        """What the probe found (None until it ran)."""
        return self._capabilities

    async def probe(self) -> StorageCapabilities:
        """The storage's real capabilities, asked once (free on local and memory storage)."""
        if self._capabilities is None:
            self._capabilities = await self._storage.probe_capabilities()
        return self._capabilities

    def forget(self) -> None:
        """Probe again at the next write (the storage settings changed)."""
        self._capabilities = None

    async def require(self) -> None:
        """Refuse a write with ``ReadOnlyStorageError`` unless it is safe or allowed; the
        first allowed unsafe one gives an ``UnsafeWritesWarning``."""
        found = self._capabilities or await self.probe()
        if found.safe_writes:
            return
        self._storage.check_writable(found)
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"writing to {self._storage.url} without {found.missing}, because unsafe "
                f"writes were allowed: {UNSAFE_WRITES_RISK}",
                UnsafeWritesWarning,
                stacklevel=1,  # raised on the engine's loop: no user frame to point at
            )
