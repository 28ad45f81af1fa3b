"""Write (or check) openapi.json: the OpenAPI document generated from the API's resolver.

python -m batch_gateway_local.openapi            # rewrite openapi.json (make openapi)
python -m batch_gateway_local.openapi --check    # exit 1 when openapi.json is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from batch_gateway.api.app import openapi_json

OPENAPI_PATH = Path(__file__).resolve().parents[2] / "openapi.json"


def document() -> str:
    return openapi_json() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="only compare, do not write")
    parser.add_argument("--path", type=Path, default=OPENAPI_PATH)
    args = parser.parse_args(argv)
    current = args.path.read_text() if args.path.exists() else ""
    wanted = document()
    if args.check:
        if current != wanted:
            sys.stderr.write(f"{args.path} is out of date: run `make openapi`\n")
            return 1
        return 0
    if current != wanted:
        args.path.write_text(wanted)
        sys.stderr.write(f"wrote {args.path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
