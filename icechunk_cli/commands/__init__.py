"""One module per verb. Each parses its arguments, calls one library function, and renders.

Modules import only typer and the CLI's own helpers at import time; ``icechunk_lib`` is
imported inside the command functions so that ``ick --help`` does not load it.
"""
