"""ick: a transactional, versioned storage engine for Zarr v3 arrays.

The public names follow Icechunk 1.1, so ``import icechunk_lib as icechunk`` runs code
written for Icechunk. Names load on first use: ``import icechunk_lib`` stays cheap for code
(like the ``ick`` command) that never touches array data.

``_EXPORTS`` is the one list of public names, each with its module: ``__all__``,
``__getattr__`` and ``__dir__`` come from it. The ``TYPE_CHECKING`` imports repeat it for type
checkers and editors, and tests/test_public_api.py fails if the two ever differ.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from icechunk_lib._lazy import LazyExports

if TYPE_CHECKING:
    from icechunk_lib.conflicts import BasicConflictSolver as BasicConflictSolver
    from icechunk_lib.conflicts import Conflict as Conflict
    from icechunk_lib.conflicts import ConflictDetector as ConflictDetector
    from icechunk_lib.conflicts import ConflictSolver as ConflictSolver
    from icechunk_lib.conflicts import ConflictType as ConflictType
    from icechunk_lib.conflicts import VersionSelection as VersionSelection
    from icechunk_lib.discover import find_repository as find_repository
    from icechunk_lib.errors import AlreadyExistsError as AlreadyExistsError
    from icechunk_lib.errors import AmbiguousRefError as AmbiguousRefError
    from icechunk_lib.errors import BranchAlreadyExistsError as BranchAlreadyExistsError
    from icechunk_lib.errors import BranchNotFoundError as BranchNotFoundError
    from icechunk_lib.errors import ConcurrentUpdateError as ConcurrentUpdateError
    from icechunk_lib.errors import ConfigChangedError as ConfigChangedError
    from icechunk_lib.errors import ConfigError as ConfigError
    from icechunk_lib.errors import ConflictError as ConflictError
    from icechunk_lib.errors import CorruptObjectError as CorruptObjectError
    from icechunk_lib.errors import IcechunkError as IcechunkError
    from icechunk_lib.errors import ImportSourceError as ImportSourceError
    from icechunk_lib.errors import ImportSourceNotFoundError as ImportSourceNotFoundError
    from icechunk_lib.errors import ImportWouldDeleteError as ImportWouldDeleteError
    from icechunk_lib.errors import IntegrityError as IntegrityError
    from icechunk_lib.errors import InvalidImportSourceError as InvalidImportSourceError
    from icechunk_lib.errors import InvalidInputError as InvalidInputError
    from icechunk_lib.errors import InvalidNameError as InvalidNameError
    from icechunk_lib.errors import InvalidVirtualContainerError as InvalidVirtualContainerError
    from icechunk_lib.errors import InvalidVirtualLocationError as InvalidVirtualLocationError
    from icechunk_lib.errors import NoChangesToCommitError as NoChangesToCommitError
    from icechunk_lib.errors import NodeNotFoundError as NodeNotFoundError
    from icechunk_lib.errors import NotFoundError as NotFoundError
    from icechunk_lib.errors import ProtectedBranchError as ProtectedBranchError
    from icechunk_lib.errors import ReadOnlySessionError as ReadOnlySessionError
    from icechunk_lib.errors import ReadOnlyStorageError as ReadOnlyStorageError
    from icechunk_lib.errors import RebaseFailedError as RebaseFailedError
    from icechunk_lib.errors import RefNotFoundError as RefNotFoundError
    from icechunk_lib.errors import RefsKeptMovingError as RefsKeptMovingError
    from icechunk_lib.errors import RepositoryAlreadyExistsError as RepositoryAlreadyExistsError
    from icechunk_lib.errors import RepositoryNotFoundError as RepositoryNotFoundError
    from icechunk_lib.errors import RevisionNotFoundError as RevisionNotFoundError
    from icechunk_lib.errors import SessionError as SessionError
    from icechunk_lib.errors import SnapshotNotFoundError as SnapshotNotFoundError
    from icechunk_lib.errors import StorageError as StorageError
    from icechunk_lib.errors import TagAlreadyExistsError as TagAlreadyExistsError
    from icechunk_lib.errors import TagNotFoundError as TagNotFoundError
    from icechunk_lib.errors import UnsafeWritesWarning as UnsafeWritesWarning
    from icechunk_lib.errors import UnsupportedError as UnsupportedError
    from icechunk_lib.errors import UnsupportedFormatError as UnsupportedFormatError
    from icechunk_lib.errors import VirtualChunkError as VirtualChunkError
    from icechunk_lib.errors import (
        VirtualContainerNotAuthorizedError as VirtualContainerNotAuthorizedError,
    )
    from icechunk_lib.errors import VirtualContainerNotFoundError as VirtualContainerNotFoundError
    from icechunk_lib.errors import VirtualSourceChangedError as VirtualSourceChangedError
    from icechunk_lib.errors import VirtualSourceError as VirtualSourceError
    from icechunk_lib.errors import VirtualSourceNotFoundError as VirtualSourceNotFoundError
    from icechunk_lib.errors import VirtualSourceTruncatedError as VirtualSourceTruncatedError
    from icechunk_lib.errors import VirtualStoreUnsupportedError as VirtualStoreUnsupportedError
    from icechunk_lib.format.config import CachingConfig as CachingConfig
    from icechunk_lib.format.config import CompressionConfig as CompressionConfig
    from icechunk_lib.format.config import ManifestConfig as ManifestConfig
    from icechunk_lib.format.config import RepositoryConfig as RepositoryConfig
    from icechunk_lib.format.containers import AnyObjectStoreConfig as AnyObjectStoreConfig
    from icechunk_lib.format.containers import ObjectStoreConfig as ObjectStoreConfig
    from icechunk_lib.format.containers import S3Options as S3Options
    from icechunk_lib.format.containers import VirtualChunkContainer as VirtualChunkContainer
    from icechunk_lib.format.preload import ManifestPreloadCondition as ManifestPreloadCondition
    from icechunk_lib.format.preload import ManifestPreloadConfig as ManifestPreloadConfig
    from icechunk_lib.format.splitting import ManifestSplitCondition as ManifestSplitCondition
    from icechunk_lib.format.splitting import ManifestSplitDimCondition as ManifestSplitDimCondition
    from icechunk_lib.format.splitting import ManifestSplittingConfig as ManifestSplittingConfig
    from icechunk_lib.format.storage_settings import (
        StorageConcurrencySettings as StorageConcurrencySettings,
    )
    from icechunk_lib.format.storage_settings import (
        StorageRetriesSettings as StorageRetriesSettings,
    )
    from icechunk_lib.format.storage_settings import StorageSettings as StorageSettings
    from icechunk_lib.history import ReflogEntry as ReflogEntry
    from icechunk_lib.history import SnapshotInfo as SnapshotInfo
    from icechunk_lib.ops.diff import Diff as Diff
    from icechunk_lib.ops.expire import ExpiredSnapshots as ExpiredSnapshots
    from icechunk_lib.ops.gc import GCSummary as GCSummary
    from icechunk_lib.ops.importer import ImportStats as ImportStats
    from icechunk_lib.ops.importer import import_zarr as import_zarr
    from icechunk_lib.ops.importer import import_zarr_async as import_zarr_async
    from icechunk_lib.ops.tree import NodeInfo as NodeInfo
    from icechunk_lib.ops.verify import VerifyReport as VerifyReport
    from icechunk_lib.refs import DEFAULT_BRANCH as DEFAULT_BRANCH
    from icechunk_lib.repository import Repository as Repository
    from icechunk_lib.session import Session as Session
    from icechunk_lib.storage import S3Credentials as S3Credentials
    from icechunk_lib.storage import S3StaticCredentials as S3StaticCredentials
    from icechunk_lib.storage import S3Storage as S3Storage
    from icechunk_lib.storage import Storage as Storage
    from icechunk_lib.storage import StorageTuning as StorageTuning
    from icechunk_lib.storage import azure_storage as azure_storage
    from icechunk_lib.storage import gcs_storage as gcs_storage
    from icechunk_lib.storage import in_memory_storage as in_memory_storage
    from icechunk_lib.storage import local_filesystem_storage as local_filesystem_storage
    from icechunk_lib.storage import r2_storage as r2_storage
    from icechunk_lib.storage import s3_anonymous_credentials as s3_anonymous_credentials
    from icechunk_lib.storage import s3_credentials as s3_credentials
    from icechunk_lib.storage import s3_from_env_credentials as s3_from_env_credentials
    from icechunk_lib.storage import s3_refreshable_credentials as s3_refreshable_credentials
    from icechunk_lib.storage import s3_static_credentials as s3_static_credentials
    from icechunk_lib.storage import s3_storage as s3_storage
    from icechunk_lib.storage import storage_from_url as storage_from_url
    from icechunk_lib.storage import tigris_storage as tigris_storage
    from icechunk_lib.store import IcechunkStore as IcechunkStore
    from icechunk_lib.virtual.access import containers_credentials as containers_credentials
    from icechunk_lib.virtual.spec import VirtualChunkSpec as VirtualChunkSpec
    from icechunk_lib.virtual.stores import azure_store as azure_store
    from icechunk_lib.virtual.stores import gcs_store as gcs_store
    from icechunk_lib.virtual.stores import http_store as http_store
    from icechunk_lib.virtual.stores import local_filesystem_store as local_filesystem_store
    from icechunk_lib.virtual.stores import s3_store as s3_store

__version__ = "0.1.0"

_EXPORTS = LazyExports(
    globals(),
    {
        "AlreadyExistsError": "icechunk_lib.errors",
        "ConcurrentUpdateError": "icechunk_lib.errors",
        "IntegrityError": "icechunk_lib.errors",
        "InvalidInputError": "icechunk_lib.errors",
        "NotFoundError": "icechunk_lib.errors",
        "UnsupportedError": "icechunk_lib.errors",
        "DEFAULT_BRANCH": "icechunk_lib.refs",
        "AmbiguousRefError": "icechunk_lib.errors",
        "BasicConflictSolver": "icechunk_lib.conflicts",
        "BranchAlreadyExistsError": "icechunk_lib.errors",
        "BranchNotFoundError": "icechunk_lib.errors",
        "CachingConfig": "icechunk_lib.format.config",
        "CompressionConfig": "icechunk_lib.format.config",
        "ConfigChangedError": "icechunk_lib.errors",
        "ConfigError": "icechunk_lib.errors",
        "Conflict": "icechunk_lib.conflicts",
        "ConflictDetector": "icechunk_lib.conflicts",
        "ConflictError": "icechunk_lib.errors",
        "ConflictSolver": "icechunk_lib.conflicts",
        "ConflictType": "icechunk_lib.conflicts",
        "CorruptObjectError": "icechunk_lib.errors",
        "Diff": "icechunk_lib.ops.diff",
        "ExpiredSnapshots": "icechunk_lib.ops.expire",
        "GCSummary": "icechunk_lib.ops.gc",
        "IcechunkError": "icechunk_lib.errors",
        "IcechunkStore": "icechunk_lib.store",
        "ImportSourceError": "icechunk_lib.errors",
        "ImportSourceNotFoundError": "icechunk_lib.errors",
        "ImportStats": "icechunk_lib.ops.importer",
        "ImportWouldDeleteError": "icechunk_lib.errors",
        "InvalidImportSourceError": "icechunk_lib.errors",
        "InvalidNameError": "icechunk_lib.errors",
        "ManifestConfig": "icechunk_lib.format.config",
        "ManifestPreloadCondition": "icechunk_lib.format.preload",
        "ManifestPreloadConfig": "icechunk_lib.format.preload",
        "ManifestSplitCondition": "icechunk_lib.format.splitting",
        "ManifestSplitDimCondition": "icechunk_lib.format.splitting",
        "ManifestSplittingConfig": "icechunk_lib.format.splitting",
        "NoChangesToCommitError": "icechunk_lib.errors",
        "NodeInfo": "icechunk_lib.ops.tree",
        "NodeNotFoundError": "icechunk_lib.errors",
        "ProtectedBranchError": "icechunk_lib.errors",
        "ReadOnlySessionError": "icechunk_lib.errors",
        "ReadOnlyStorageError": "icechunk_lib.errors",
        "RebaseFailedError": "icechunk_lib.errors",
        "RefNotFoundError": "icechunk_lib.errors",
        "RefsKeptMovingError": "icechunk_lib.errors",
        "ReflogEntry": "icechunk_lib.history",
        "Repository": "icechunk_lib.repository",
        "RepositoryAlreadyExistsError": "icechunk_lib.errors",
        "RepositoryConfig": "icechunk_lib.format.config",
        "RepositoryNotFoundError": "icechunk_lib.errors",
        "RevisionNotFoundError": "icechunk_lib.errors",
        "Session": "icechunk_lib.session",
        "SessionError": "icechunk_lib.errors",
        "SnapshotInfo": "icechunk_lib.history",
        "SnapshotNotFoundError": "icechunk_lib.errors",
        "Storage": "icechunk_lib.storage",
        "StorageError": "icechunk_lib.errors",
        "TagAlreadyExistsError": "icechunk_lib.errors",
        "TagNotFoundError": "icechunk_lib.errors",
        "UnsafeWritesWarning": "icechunk_lib.errors",
        "UnsupportedFormatError": "icechunk_lib.errors",
        "VerifyReport": "icechunk_lib.ops.verify",
        "VersionSelection": "icechunk_lib.conflicts",
        "azure_storage": "icechunk_lib.storage",
        "find_repository": "icechunk_lib.discover",
        "gcs_storage": "icechunk_lib.storage",
        "import_zarr": "icechunk_lib.ops.importer",
        "import_zarr_async": "icechunk_lib.ops.importer",
        "in_memory_storage": "icechunk_lib.storage",
        "local_filesystem_storage": "icechunk_lib.storage",
        "storage_from_url": "icechunk_lib.storage",
        "S3Credentials": "icechunk_lib.storage",
        "S3StaticCredentials": "icechunk_lib.storage",
        "S3Storage": "icechunk_lib.storage",
        "StorageTuning": "icechunk_lib.storage",
        "r2_storage": "icechunk_lib.storage",
        "s3_anonymous_credentials": "icechunk_lib.storage",
        "s3_credentials": "icechunk_lib.storage",
        "s3_from_env_credentials": "icechunk_lib.storage",
        "s3_refreshable_credentials": "icechunk_lib.storage",
        "s3_static_credentials": "icechunk_lib.storage",
        "s3_storage": "icechunk_lib.storage",
        "tigris_storage": "icechunk_lib.storage",
        "InvalidVirtualContainerError": "icechunk_lib.errors",
        "InvalidVirtualLocationError": "icechunk_lib.errors",
        "VirtualChunkError": "icechunk_lib.errors",
        "VirtualContainerNotAuthorizedError": "icechunk_lib.errors",
        "VirtualContainerNotFoundError": "icechunk_lib.errors",
        "VirtualSourceChangedError": "icechunk_lib.errors",
        "VirtualSourceError": "icechunk_lib.errors",
        "VirtualSourceNotFoundError": "icechunk_lib.errors",
        "VirtualSourceTruncatedError": "icechunk_lib.errors",
        "VirtualStoreUnsupportedError": "icechunk_lib.errors",
        "AnyObjectStoreConfig": "icechunk_lib.format.containers",
        "ObjectStoreConfig": "icechunk_lib.format.containers",
        "S3Options": "icechunk_lib.format.containers",
        "VirtualChunkContainer": "icechunk_lib.format.containers",
        "containers_credentials": "icechunk_lib.virtual.access",
        "azure_store": "icechunk_lib.virtual.stores",
        "gcs_store": "icechunk_lib.virtual.stores",
        "http_store": "icechunk_lib.virtual.stores",
        "local_filesystem_store": "icechunk_lib.virtual.stores",
        "s3_store": "icechunk_lib.virtual.stores",
        "VirtualChunkSpec": "icechunk_lib.virtual.spec",
        "StorageConcurrencySettings": "icechunk_lib.format.storage_settings",
        "StorageRetriesSettings": "icechunk_lib.format.storage_settings",
        "StorageSettings": "icechunk_lib.format.storage_settings",
    },
    eager=("__version__",),
)
__all__ = _EXPORTS.names
__getattr__ = _EXPORTS.getattr
__dir__ = _EXPORTS.dir
