"""Benchmarks of ick against Icechunk and zarr's plain stores (``make bench``).

Run ``.venv/bin/python benchmarks/run.py --help`` for the options; docs/performance.md shows
the latest results and how they were produced.
"""
