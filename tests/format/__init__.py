"""Property tests of icechunk_lib.format, one module per format module."""
