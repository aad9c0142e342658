"""ick: a transactional, versioned storage engine for Zarr v3 arrays.

The public names follow Icechunk 1.1, so ``import icechunk_lib as icechunk`` runs code
written for Icechunk.
"""

from icechunk_lib.conflicts import (
    BasicConflictSolver,
    Conflict,
    ConflictDetector,
    ConflictSolver,
    ConflictType,
    VersionSelection,
)
from icechunk_lib.errors import (
    BranchAlreadyExistsError,
    BranchNotFoundError,
    ConfigError,
    ConflictError,
    CorruptObjectError,
    IcechunkError,
    InvalidNameError,
    NoChangesToCommitError,
    ReadOnlySessionError,
    RebaseFailedError,
    RefNotFoundError,
    RepositoryAlreadyExistsError,
    RepositoryNotFoundError,
    SnapshotNotFoundError,
    StorageError,
    TagAlreadyExistsError,
    TagNotFoundError,
    UnsupportedFormatError,
)
from icechunk_lib.format.config import (
    CachingConfig,
    CompressionConfig,
    ManifestConfig,
    RepositoryConfig,
)
from icechunk_lib.ops.diff import Diff
from icechunk_lib.repository import Repository, SnapshotInfo
from icechunk_lib.session import Session
from icechunk_lib.storage import (
    Storage,
    in_memory_storage,
    local_filesystem_storage,
    storage_from_url,
)
from icechunk_lib.store import IcechunkStore

__version__ = "0.1.0"

__all__ = [
    "BasicConflictSolver",
    "BranchAlreadyExistsError",
    "BranchNotFoundError",
    "CachingConfig",
    "CompressionConfig",
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
    "InvalidNameError",
    "ManifestConfig",
    "NoChangesToCommitError",
    "ReadOnlySessionError",
    "RebaseFailedError",
    "RefNotFoundError",
    "Repository",
    "RepositoryAlreadyExistsError",
    "RepositoryConfig",
    "RepositoryNotFoundError",
    "Session",
    "SnapshotInfo",
    "SnapshotNotFoundError",
    "Storage",
    "StorageError",
    "TagAlreadyExistsError",
    "TagNotFoundError",
    "UnsupportedFormatError",
    "VersionSelection",
    "__version__",
    "in_memory_storage",
    "local_filesystem_storage",
    "storage_from_url",
]
