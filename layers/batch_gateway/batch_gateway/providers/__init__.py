"""Batch providers behind one protocol: OpenAI, Azure OpenAI, Anthropic and Amazon Bedrock.

From the bottom of the import graph up:

* ``errors``, ``types``: the errors every provider raises and the models it returns;
* ``custom_ids``, ``requests``, ``line_encoder``: provider-safe ids and request lines (pure, no
  SDK: intake builds lines with them alone);
* ``parsing`` (shared readers), ``streaming`` (resumable result downloads);
* ``base``: the ``BatchProvider`` protocol and what the SDK-backed providers share;
* ``openai/`` (with Azure OpenAI), ``anthropic/``, ``bedrock/``: one folder per provider, its
  ``batch`` (the API calls) and ``parsing`` (its answers into ``types``);
* ``registry``: a provider by name, configured from the stack's settings and secret.

Importing any of these imports no provider SDK (``openai``, ``anthropic``): a provider imports its
SDK when it first calls out; boto3, which Bedrock uses, is imported by the gateway anyway.
"""
