"""The flags ``local run`` and ``submit`` share for the file and what runs it: ``--format``,
``--template``, ``--id-column`` and ``--embeddings``.

``--format`` forces how the file's lines are read (``intake.formats``): ``items`` (our BatchItems),
``openai``, ``anthropic``, ``bedrock`` (the providers' own batch lines) or ``csv`` (a table whose
rows fill ``--template``); without it the gateway detects the format from the first line, and a
``.csv`` suffix means ``csv``. :func:`format_fields` gives the job spec's fields for them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, get_args

from batch_gateway.models import InputFormat


def add_format_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("the file's format")
    group.add_argument(
        "--format",
        choices=get_args(InputFormat),
        default=None,
        help="how the lines are written (default: detected from the first line; .csv means csv)",
    )
    group.add_argument(
        "--template", default=None, help="csv: the prompt of each row, e.g. 'Classify this ticket: {text}'"
    )
    group.add_argument("--id-column", default=None, help="csv: the column that holds each row's custom_id")
    parser.add_argument(
        "--embeddings",
        dest="job_endpoint",
        action="store_const",
        const="embeddings",
        default="chat",
        help="run an embeddings batch (openai and azure-openai): each item's user_message is embedded "
        "and the answer is response.embedding (default: chat completions)",
    )


def format_fields(args: argparse.Namespace, path: Path | str | None) -> dict[str, Any]:
    """The spec's format, template and id_column (None where not given)."""
    input_format = args.format
    if input_format is None and path is not None and str(path).lower().endswith(".csv"):
        input_format = "csv"
    return {
        "format": input_format,
        "template": args.template,
        "id_column": args.id_column,
        "endpoint": args.job_endpoint,
    }
