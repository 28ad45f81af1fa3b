"""`python -m batch_gateway_local.emulator --port 8089`: serve the emulator until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import signal
from types import FrameType

from .scenarios import scenario_names
from .server import EmulatorServer


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Offline OpenAI Batch + Anthropic Message Batches emulator.")
    parser.add_argument("--port", type=int, default=8089, help="port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--polls-to-complete", type=int, default=2, help="retrieves until a batch completes")
    parser.add_argument(
        "--scenario", default="default", choices=scenario_names(), help="server-wide scenario"
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    # Stop cleanly on Ctrl-C and on SIGTERM, also when started in the background (where SIGINT is ignored).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    server = EmulatorServer(args.polls_to_complete, port=args.port, scenario=args.scenario)
    server.start()
    print(f"Batch emulator on {server.base_url}", flush=True)
    print(f"  OpenAI:    OpenAI(api_key='any', base_url='{server.openai_base_url}')", flush=True)
    print(f"  Anthropic: Anthropic(api_key='any', base_url='{server.anthropic_base_url}')", flush=True)
    print("Ctrl-C to stop.", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
