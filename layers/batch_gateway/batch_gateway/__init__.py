"""Batch Gateway's domain, shipped to Lambda as a layer; one folder per stage of a job.

``intake`` reads and splits a file into provider-ready chunks, ``workflow`` holds what the state
machine's steps do (submit, wait, poll, collect, finalize), ``triggers`` what starts work from
outside (webhooks, events, schedules, the reconciler), ``api`` the HTTP API, ``providers`` the four
batch APIs behind one protocol and ``storage`` every S3 key and table row. ``models``, ``settings``,
``observability``, ``cost`` and ``lines`` sit at the bottom and import none of the folders.
"""
