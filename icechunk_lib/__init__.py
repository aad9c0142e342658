"""ick: a transactional, versioned storage engine for Zarr v3 arrays.

The public names follow Icechunk 1.1, so ``import icechunk_lib as icechunk`` runs code
written for Icechunk. Names load on first use: ``import icechunk_lib`` stays cheap for code
(like the ``ick`` command) that never touches array data.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from icechunk_lib.conflicts import (
        BasicConflictSolver,
        Conflict,
        ConflictDetector,
        ConflictSolver,
        ConflictType,
        VersionSelection,
    )
    from icechunk_lib.discover import (
        find_repository,
    )
    from icechunk_lib.errors import (
        AlreadyExistsError,
        AmbiguousRefError,
        BranchAlreadyExistsError,
        BranchNotFoundError,
        ConcurrentUpdateError,
        ConfigChangedError,
        ConfigError,
        ConflictError,
        CorruptObjectError,
        IcechunkError,
        ImportSourceError,
        ImportSourceNotFoundError,
        IntegrityError,
        InvalidInputError,
        InvalidNameError,
        NoChangesToCommitError,
        NodeNotFoundError,
        NotFoundError,
        ProtectedBranchError,
        ReadOnlySessionError,
        ReadOnlyStorageError,
        RebaseFailedError,
        RefNotFoundError,
        RepositoryAlreadyExistsError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
        SessionError,
        SnapshotNotFoundError,
        StorageError,
        TagAlreadyExistsError,
        TagNotFoundError,
        UnsupportedError,
        UnsupportedFormatError,
    )
    from icechunk_lib.format.config import (
        CachingConfig,
        CompressionConfig,
        ManifestConfig,
        RepositoryConfig,
    )
    from icechunk_lib.history import (
        ReflogEntry,
        SnapshotInfo,
    )
    from icechunk_lib.ops.diff import Diff
    from icechunk_lib.ops.importer import ImportStats, import_zarr, import_zarr_async
    from icechunk_lib.ops.tree import (
        NodeInfo,
    )
    from icechunk_lib.refs import DEFAULT_BRANCH
    from icechunk_lib.repository import Repository
    from icechunk_lib.session import Session
    from icechunk_lib.storage import (
        Storage,
        in_memory_storage,
        local_filesystem_storage,
        storage_from_url,
    )
    from icechunk_lib.store import IcechunkStore

__version__ = "0.1.0"

_LAZY = {
    "DEFAULT_BRANCH": "icechunk_lib.refs",
    "AlreadyExistsError": "icechunk_lib.errors",
    "ConcurrentUpdateError": "icechunk_lib.errors",
    "IntegrityError": "icechunk_lib.errors",
    "InvalidInputError": "icechunk_lib.errors",
    "NotFoundError": "icechunk_lib.errors",
    "UnsupportedError": "icechunk_lib.errors",
    "ConfigChangedError": "icechunk_lib.errors",
    "ImportSourceNotFoundError": "icechunk_lib.errors",
    "ImportSourceError": "icechunk_lib.errors",
    "ImportWouldDeleteError": "icechunk_lib.errors",
    "InvalidImportSourceError": "icechunk_lib.errors",
    "import_zarr_async": "icechunk_lib.ops.importer",
    "import_zarr": "icechunk_lib.ops.importer",
    "ImportStats": "icechunk_lib.ops.importer",
    "IcechunkStore": "icechunk_lib.store",
    "Session": "icechunk_lib.session",
    "Diff": "icechunk_lib.ops.diff",
    "Repository": "icechunk_lib.repository",
    "AmbiguousRefError": "icechunk_lib.errors",
    "BasicConflictSolver": "icechunk_lib.conflicts",
    "BranchAlreadyExistsError": "icechunk_lib.errors",
    "BranchNotFoundError": "icechunk_lib.errors",
    "CachingConfig": "icechunk_lib.format.config",
    "CompressionConfig": "icechunk_lib.format.config",
    "ConfigError": "icechunk_lib.errors",
    "Conflict": "icechunk_lib.conflicts",
    "ConflictDetector": "icechunk_lib.conflicts",
    "ConflictError": "icechunk_lib.errors",
    "ConflictSolver": "icechunk_lib.conflicts",
    "ConflictType": "icechunk_lib.conflicts",
    "CorruptObjectError": "icechunk_lib.errors",
    "IcechunkError": "icechunk_lib.errors",
    "InvalidNameError": "icechunk_lib.errors",
    "ManifestConfig": "icechunk_lib.format.config",
    "NoChangesToCommitError": "icechunk_lib.errors",
    "NodeInfo": "icechunk_lib.ops.tree",
    "NodeNotFoundError": "icechunk_lib.errors",
    "ProtectedBranchError": "icechunk_lib.errors",
    "ReadOnlySessionError": "icechunk_lib.errors",
    "ReadOnlyStorageError": "icechunk_lib.errors",
    "RebaseFailedError": "icechunk_lib.errors",
    "RefNotFoundError": "icechunk_lib.errors",
    "ReflogEntry": "icechunk_lib.history",
    "RepositoryAlreadyExistsError": "icechunk_lib.errors",
    "RepositoryConfig": "icechunk_lib.format.config",
    "RepositoryNotFoundError": "icechunk_lib.errors",
    "RevisionNotFoundError": "icechunk_lib.errors",
    "SessionError": "icechunk_lib.errors",
    "SnapshotInfo": "icechunk_lib.history",
    "SnapshotNotFoundError": "icechunk_lib.errors",
    "Storage": "icechunk_lib.storage",
    "StorageError": "icechunk_lib.errors",
    "TagAlreadyExistsError": "icechunk_lib.errors",
    "TagNotFoundError": "icechunk_lib.errors",
    "UnsupportedFormatError": "icechunk_lib.errors",
    "VersionSelection": "icechunk_lib.conflicts",
    "find_repository": "icechunk_lib.discover",
    "in_memory_storage": "icechunk_lib.storage",
    "local_filesystem_storage": "icechunk_lib.storage",
    "storage_from_url": "icechunk_lib.storage",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "DEFAULT_BRANCH",
    "AlreadyExistsError",
    "AmbiguousRefError",
    "BasicConflictSolver",
    "BranchAlreadyExistsError",
    "BranchNotFoundError",
    "CachingConfig",
    "CompressionConfig",
    "ConcurrentUpdateError",
    "ConfigChangedError",
    "ConfigError",
    "Conflict",
    "ConflictDetector",
    "ConflictError",
    "ConflictSolver",
    "ConflictType",
    "CorruptObjectError",
    "Diff",
    "IcechunkError",
    "IcechunkStore",
    "ImportSourceError",
    "ImportSourceNotFoundError",
    "ImportStats",
    "ImportWouldDeleteError",
    "IntegrityError",
    "InvalidImportSourceError",
    "InvalidInputError",
    "InvalidNameError",
    "ManifestConfig",
    "NoChangesToCommitError",
    "NodeInfo",
    "NodeNotFoundError",
    "NotFoundError",
    "ProtectedBranchError",
    "ReadOnlySessionError",
    "ReadOnlyStorageError",
    "RebaseFailedError",
    "RefNotFoundError",
    "ReflogEntry",
    "Repository",
    "RepositoryAlreadyExistsError",
    "RepositoryConfig",
    "RepositoryNotFoundError",
    "RevisionNotFoundError",
    "Session",
    "SessionError",
    "SnapshotInfo",
    "SnapshotNotFoundError",
    "Storage",
    "StorageError",
    "TagAlreadyExistsError",
    "TagNotFoundError",
    "UnsupportedError",
    "UnsupportedFormatError",
    "VersionSelection",
    "__version__",
    "find_repository",
    "import_zarr",
    "import_zarr_async",
    "in_memory_storage",
    "local_filesystem_storage",
    "storage_from_url",
]
