"""The ``ick`` command line: git-like version control for array repositories."""
