"""The benchmark cases, one module each, by id."""

from __future__ import annotations

from benchmarks.cases import (
    commit_cost,
    history,
    large_array,
    maintenance,
    many_arrays,
    store_overhead,
    virtual_refs,
    whole_arrays,
    xarray_io,
)
from benchmarks.harness import Case

__all__ = ["CASES"]

CASES: dict[str, Case] = {
    case.id: case
    for case in (
        store_overhead.CASE,
        whole_arrays.CASE,
        commit_cost.CASE,
        large_array.CASE,
        many_arrays.CASE,
        history.CASE,
        xarray_io.CASE,
        maintenance.CASE,
        virtual_refs.CASE,
    )
}
