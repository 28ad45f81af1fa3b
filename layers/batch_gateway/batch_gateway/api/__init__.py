"""Api: the HTTP API behind API Gateway.

``app`` (the resolver, OpenAPI) includes one Router per resource: ``batches`` (submit, list, get),
``results`` and ``cancel``; ``errors`` (the error shape and exception handlers), ``tokens``
(pagination), ``submission`` (a request becomes an inbox object), ``views`` (a job's answer), ``models``.
"""
