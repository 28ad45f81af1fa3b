"""The ``batch-gateway`` command line.

commands (the parser and the dispatch), run (``local run``: one file end to end on the offline
stack), up (``local up``: the HTTP API on the offline stack), client_commands (``submit``, ``status``,
``list``, ``results``, ``cancel`` against the API, over the Python client ``batch_gateway_client``),
progress (the status line and progress bar). ``main`` is re-exported here: it is the
``batch-gateway = "batch_gateway_local.cli:main"`` entry point of pyproject.toml.
"""

from batch_gateway_local.cli.commands import main

__all__ = ["main"]
