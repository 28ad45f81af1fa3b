"""The web console: watch jobs, see why items failed, download results, submit files — in a browser.

``batch-gateway console`` (and ``local up --console``) serves it on 127.0.0.1. It is a small
Starlette app with Jinja2 templates (autoescaped) and htmx (vendored in ``static/``, no CDN, no
Node build) that calls only the gateway's HTTP API, through ``console.api``: the server signs each
request (SigV4 or the API key), so the browser never holds AWS credentials and the stack gains no
new surface. Modules: ``api`` (the one adapter to the HTTP client), ``views`` (what a page shows,
as plain data), ``app`` (routes, CSRF, security headers), ``server`` (uvicorn on a thread, the
``console`` command).
"""
