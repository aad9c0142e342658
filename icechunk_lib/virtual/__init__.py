"""Virtual chunks: byte ranges of objects outside the repository (NetCDF, HDF5, GRIB files).

The containers they may live in are declared in the repository config
(``icechunk_lib.format.containers``); this package holds what is never saved: the stores'
builders, the user's authorisation with its credentials, and the resolver the read path uses.
"""

from __future__ import annotations

from icechunk_lib.virtual._local import local_file_etag
from icechunk_lib.virtual.access import (
    AnyContainerCredential,
    VirtualAccess,
    containers_credentials,
)
from icechunk_lib.virtual.resolver import VirtualResolver, VirtualTarget
from icechunk_lib.virtual.stores import (
    azure_store,
    gcs_store,
    http_store,
    local_filesystem_store,
    s3_store,
)

__all__ = [
    "AnyContainerCredential",
    "VirtualAccess",
    "VirtualResolver",
    "VirtualTarget",
    "azure_store",
    "containers_credentials",
    "gcs_store",
    "http_store",
    "local_file_etag",
    "local_filesystem_store",
    "s3_store",
]
