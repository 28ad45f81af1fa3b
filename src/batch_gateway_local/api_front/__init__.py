"""The local stand-in for API Gateway in front of the offline stack's API function (``local up``).

routes (stage, routes and gateway responses read from template.yaml's API definition) and server
(the HTTP server on 127.0.0.1: routing, auth, throttling, the Lambda proxy event, the answer).
"""
