"""The emulated OpenAI API as the server routes it: the Files and Batches endpoints under ``/v1``.

:class:`OpenAIApi` is what ``emulator.server`` dispatches to; ``azure_api`` subclasses it for Azure
OpenAI's routes (``/openai``), which differ only at the edges.
"""

from __future__ import annotations

import re

from batch_gateway_local.emulator.openai.batches import OpenAIBatches
from batch_gateway_local.emulator.protocol import Handler
from batch_gateway_local.emulator.state import Store


class OpenAIApi(OpenAIBatches):
    """Files + Batches (chat completions endpoint); ``prefix`` is where a dialect mounts them."""

    prefix = "/v1"

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        v = re.escape(self.prefix)
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("POST", re.compile(rf"{v}/files"), self.upload_file),
            ("GET", re.compile(rf"{v}/files"), self.list_files),
            ("GET", re.compile(rf"{v}/files/(?P<file_id>[^/]+)"), self.get_file),
            ("DELETE", re.compile(rf"{v}/files/(?P<file_id>[^/]+)"), self.delete_file),
            ("GET", re.compile(rf"{v}/files/(?P<file_id>[^/]+)/content"), self.file_content),
            ("POST", re.compile(rf"{v}/batches"), self.create_batch),
            ("GET", re.compile(rf"{v}/batches"), self.list_batches),
            ("GET", re.compile(rf"{v}/batches/(?P<batch_id>[^/]+)"), self.get_batch),
            ("POST", re.compile(rf"{v}/batches/(?P<batch_id>[^/]+)/cancel"), self.cancel_batch),
        ]
