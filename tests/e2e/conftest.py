from __future__ import annotations

from collections.abc import Iterator

import pytest

from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions


@pytest.fixture(scope="module")
def gateway() -> Iterator[LocalGateway]:
    """The whole offline stack: real template, real state machine, in-process handlers, emulator."""
    with LocalGateway(LocalOptions(chunk_max_items=40)) as local:
        yield local
