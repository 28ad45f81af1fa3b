"""While handlers swap os.environ, other threads' whole-environment reads stay consistent.

boto3 (via urllib's proxy lookup) and urllib iterate os.environ.items() on every client and request;
before the snapshot a variable removed mid-iteration made them raise KeyError in the test thread.
"""

from __future__ import annotations

import os
import threading
import time
import urllib.request

from batch_gateway_local.stack.lambda_runtime.environ import set_environ
from batch_gateway_local.stack.lambda_runtime.runtime import InProcessLambdaRuntime


def test_environment_reads_survive_concurrent_swaps() -> None:
    with InProcessLambdaRuntime():
        base = dict(os.environ)
        swapped = {**base, **{f"BATCH_GATEWAY_SWAP_{n}": "1" for n in range(50)}}
        stop = threading.Event()

        def swap() -> None:
            while not stop.is_set():
                set_environ(swapped)
                set_environ(base)

        swapper = threading.Thread(target=swap)
        swapper.start()
        errors = 0
        try:
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                try:
                    urllib.request.getproxies_environment()
                    os.environ.copy()
                except KeyError:
                    errors += 1
        finally:
            stop.set()
            swapper.join()
            set_environ(base)
    assert errors == 0
    assert type(os.environ) is os._Environ
