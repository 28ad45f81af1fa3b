"""Lambda's asynchronous invocation, as S3 notifications and EventBridge targets get it.

moto invokes a notified function once and drops a failure. Lambda retries an asynchronous event
whose invocation failed, twice by default (``EventInvokeConfig.MaximumRetryAttempts``; the intake
function sets 2), after about one and then two minutes. Offline the waits are shortened; what stays is
that a handler that died gets the same event again - which is what its idempotency must absorb.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

log = logging.getLogger(__name__)

RETRY_DELAYS_S = (0.5, 1.0)
"""Offline stand-ins for Lambda's ~1 and ~2 minutes between the attempts of an asynchronous event."""


def invoke_async(function: Any, event: Any, what: str) -> bool:
    """Invoke ``function`` (a moto LambdaFunction) with ``event`` as Lambda's event queue does.

    Returns True once an attempt succeeded, False when every attempt failed (AWS then sends the
    event to the function's on-failure destination; the invocation log keeps it offline).
    """
    body = event if isinstance(event, str) else json.dumps(event)
    for attempt, delay in enumerate((0.0, *RETRY_DELAYS_S)):
        time.sleep(delay)
        headers: dict[str, Any] = {}
        try:
            function.invoke(body, {"x-amz-invocation-type": "Event"}, headers)
        except Exception:  # a broken invocation is a failed attempt, as on AWS
            log.exception("asynchronous invocation of %s for %s raised", function.function_name, what)
            continue
        if "x-amz-function-error" not in headers:
            return True
        log.warning("%s failed on attempt %d for %s", function.function_name, attempt + 1, what)
    return False
