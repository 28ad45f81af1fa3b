"""Batch Gateway on this machine: the offline stack, the provider emulator, the local API front, the CLI.

None of this is deployed. cli (the ``batch-gateway`` command), stack (template.yaml deployed into moto
with the handlers running in-process), api_front (the local stand-in for API Gateway), emulator (the
OpenAI, Anthropic, Azure OpenAI and Bedrock batch APIs, emulated over HTTP), openapi (writes
openapi.json from the API's models).
"""
