"""OpenAI's Batch API: ``batch`` (Files + Batches calls), ``parsing`` (its answers), and ``azure``
(Azure OpenAI global batch: the same API on an Azure resource, so a subclass of the OpenAI provider).

Not the ``openai`` SDK: that is imported by absolute name inside the provider's methods.
"""
