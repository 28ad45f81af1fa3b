"""Intake: an uploaded JSONL file becomes a validated job, split into provider-ready chunks.

``intake_object`` (the entry the Intake function calls) -> ``spec`` (metadata keys, job id, JobSpec)
-> ``split`` (stream the file) -> ``line_validator`` with ``checks`` (each line) and ``seen_ids``
(duplicates) -> ``chunk_writer`` (the staged chunk files) -> ``bedrock_minimum`` (Bedrock's record floor).
"""
