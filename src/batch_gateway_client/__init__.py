"""Batch Gateway's Python client: a drop-in for ``ractogateway.batch``'s processors, and the API.

``GatewayBatchProcessor`` has the reference library's eight batch methods (sync and async) and
runs them through a Batch Gateway (``endpoint=`` the API URL, or ``stack=`` a deployed stack's
name); ``GatewayClient`` / ``AsyncGatewayClient`` are the HTTP API itself, which the
``batch-gateway submit|status|list|results|cancel`` commands use too. Light on purpose: it imports
httpx, botocore (for SigV4), pydantic and ``batch_gateway.models`` only — not the Lambda runtime's
Powertools or provider SDKs — so ``pip install 'batch-gateway[client]'`` is all a user needs.
"""

from batch_gateway_client.client import AsyncGatewayClient, GatewayClient
from batch_gateway_client.core import GatewayConfig
from batch_gateway_client.errors import GatewayError
from batch_gateway_client.processor import GatewayBatchProcessor

__all__ = ["AsyncGatewayClient", "GatewayBatchProcessor", "GatewayClient", "GatewayConfig", "GatewayError"]
