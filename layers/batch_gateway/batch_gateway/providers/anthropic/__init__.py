"""Anthropic's Message Batches: ``batch`` (the API calls) and ``parsing`` (its answers).

Not the ``anthropic`` SDK: that is imported by absolute name inside the provider's methods.
"""
