"""What the benchmarks feed the gateway: realistic input lines, local-disk sinks, provider output.

Input lines look like a support team's classification/answer job: messages of 60 to 2,000
characters (median ~240, mean ~330; ~400 bytes a line), a fifth of them with line breaks, one in ten with non-ASCII text
(accents, CJK, emoji), a few quotes; 40 % set ``temperature``, 30 % ``max_tokens``, 10 % carry
``extra`` parameters, 5 % have ids Anthropic would refuse (mapped to ``bg-<line>``). Seven lines
in ten are written by ``json.dumps`` with its defaults (non-ASCII as ``\\uXXXX``), the rest as raw
UTF-8. Everything is seeded: the same sizes give the same bytes on every run.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SYSTEM_PROMPT = "You are a concise assistant for a customer-support team."
MODEL = "gpt-4o-mini"

_OPENINGS = (
    "Classify this support ticket as billing, bug, how-to or account, then draft a one-line reply.",
    "Summarise the customer's problem in one sentence and suggest the next step.",
    "Is this message a complaint, a question or praise? Answer with one word and a reason.",
    "Extract the product name and the order number from this message, as JSON.",
)
_SENTENCES = (
    "I was charged twice for my subscription last month.",
    "The app crashes every time I open the settings page on my phone.",
    "How do I export my invoices as PDF files?",
    "My colleague cannot log in since the password reset yesterday.",
    'The button labelled "Save" does nothing when the form has an attachment.',
    "We upgraded to the team plan but the extra seats do not show up.",
    "Your support agent was really helpful, thank you!",
    "The delivery was supposed to arrive on Tuesday and it is still not here.",
    "Please cancel order 4471-XK and refund the card I used.",
    "Is there an API limit on how many reports we can generate per hour?",
)
_FOREIGN = (
    "Bonjour, la facture de décembre est arrivée deux fois, pouvez-vous vérifier ?",
    "Die Größe der Datei überschreitet angeblich das Limit, obwohl sie nur 2 MB hat.",
    "注文した商品がまだ届いていません。確認していただけますか？",  # noqa: RUF001 - real Japanese punctuation
    "¿Por qué mi cuenta está bloqueada? No he cambiado la contraseña. 😕",
)


def _message(rng: random.Random, n: int) -> str:
    parts = [rng.choice(_OPENINGS), f"Ticket #{n}:"]
    parts += rng.choices(_SENTENCES, k=max(1, int(rng.lognormvariate(1.0, 0.9))))
    if rng.random() < 0.10:
        parts.append(rng.choice(_FOREIGN))
    separator = "\n\n" if rng.random() < 0.20 else " "
    return separator.join(parts)[:2000]


def item(rng: random.Random, n: int) -> dict[str, Any]:
    """The n-th input line (1-based) as a dict."""
    custom_id = f"ticket-{n:07d}" if rng.random() >= 0.05 else f"crm/2026/ticket {n}.v2"
    line: dict[str, Any] = {"custom_id": custom_id, "user_message": _message(rng, n)}
    if rng.random() < 0.40:
        line["temperature"] = round(rng.uniform(0.0, 1.0), 1)
    if rng.random() < 0.30:
        line["max_tokens"] = rng.choice((64, 128, 256, 512, 1024))
    if rng.random() < 0.10:
        line["extra"] = rng.choice(
            ({"top_p": 0.9}, {"response_format": {"type": "json_object"}}, {"seed": n % 1000})
        )
    return line


def write_input(path: Path, count: int, seed: int = 7) -> int:
    """Write ``count`` lines to ``path``; returns the byte size."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        for n in range(1, count + 1):
            out.write(json.dumps(item(rng, n), ensure_ascii=rng.random() < 0.7) + "\n")
    return path.stat().st_size


def head_lines(source: Path, target: Path, count: int) -> None:
    """The first ``count`` lines of ``source`` (the same lines as generating ``count`` afresh)."""
    with source.open("rb") as src, target.open("wb") as out:
        for _ in range(count):
            out.write(src.readline())


# ------------------------------------------------------------------ S3 and DynamoDB as local sinks
def use_local_storage(root: Path) -> None:
    """Point the layer's S3 and DynamoDB access at local disk and memory (benchmarks only).

    moto keeps every object and row in this process's memory and would measure itself, not us; on
    Lambda the same domain code streams to S3 and DynamoDB. Every loaded ``batch_gateway`` module
    that holds one of the replaced names (a module attribute or a name imported from storage) gets
    the stand-in, so the patch follows the code wherever the layout puts it.
    """
    import importlib

    from batch_gateway.storage import jobs, results, s3
    from batch_gateway.workflow import capacity

    for name in _DOMAIN_MODULES:  # loaded first, so their imported names are patched too
        importlib.import_module(name)

    def upload_file(path: Path, bucket: str, key: str, content_type: str = "") -> None:
        target = root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)

    def open_object(bucket: str, key: str, version_id: str | None = None) -> Any:
        return (root / key).open("rb")

    def put_json(bucket: str, key: str, document: Any) -> None:
        target = root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(document, default=str))

    def delete_prefix(bucket: str, prefix: str) -> None:
        shutil.rmtree(root / prefix, ignore_errors=True)

    def put_bytes(bucket: str, key: str, body: bytes, content_type: str = "") -> None:
        target = root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)

    def ranged_reader(bucket: str, key: str) -> Any:
        return (root / key).open("rb")

    class LocalUploadQueue:  # s3.UploadQueue on local disk (synchronous: the copy is fast)
        def __init__(self, depth: int = 4) -> None:
            pass

        def put(self, path: Path, bucket: str, key: str, content_type: str = "") -> None:
            upload_file(path, bucket, key)
            path.unlink()

        def wait(self) -> None:
            pass

        def close(self) -> None:
            pass

    global _real_results  # set once, before the patch hides the real class
    _real_results = _real_results or results.ResultsRepository
    _replace_everywhere(
        {
            s3.upload_file: upload_file,
            s3.open_object: open_object,
            s3.put_json: put_json,
            s3.delete_prefix: delete_prefix,
            s3.UploadQueue: LocalUploadQueue,
            s3.put_bytes: put_bytes,
            s3.RangedReader: ranged_reader,
            jobs.JobsRepository: MemoryJobs,
            _real_results: DiscardingResults,
            capacity.Capacity: NoQuotaCapacity,
        }
    )


# The modules the benchmarks run (intake and collect), imported before the patch.
_DOMAIN_MODULES = (
    "batch_gateway.intake.intake_object",
    "batch_gateway.intake.split",
    "batch_gateway.workflow.collect",
    "batch_gateway.workflow.finalize",
)


def _replace_everywhere(replacements: dict[Any, Any]) -> None:
    import sys

    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith("batch_gateway.") or module is None:
            continue
        for attribute, value in list(vars(module).items()):
            for real, stand_in in replacements.items():
                if value is real:
                    setattr(module, attribute, stand_in)


class NoQuotaCapacity:
    """The quota ledger with no quota bound: the benchmarks measure intake and collect, not it."""

    def __init__(self, settings: Any) -> None:
        pass

    def end_batch(self, *args: Any, **kwargs: Any) -> bool:
        return False

    def release_job(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def job_holds(self, *args: Any, **kwargs: Any) -> list[Any]:
        return []


class MemoryJobs:
    """The jobs table in a dict (a few rows per job: no growth with the file)."""

    rows: dict[tuple[str, str], dict[str, Any]] = {}

    def __init__(self, table_name: str) -> None:
        pass

    def get_job(self, job_id: str) -> Any:
        from batch_gateway.models import JobSummary

        row = self.rows.get((job_id, "JOB"))
        return JobSummary.model_validate(row) if row else None

    def save_job(self, job: Any) -> None:
        self.rows[(job.job_id, "JOB")] = job.model_dump(mode="json")

    def get_chunk(self, job_id: str, chunk: int) -> dict[str, Any]:
        return dict(self.rows.setdefault((job_id, f"CHUNK#{chunk:04d}"), {"chunk": chunk}))

    def chunk_row(self, job_id: str, chunk: int) -> Any:
        from batch_gateway.storage.chunk_row import ChunkRow

        return ChunkRow.model_validate(self.get_chunk(job_id, chunk))

    def update_chunk(
        self, job_id: str, chunk: int, fields: dict[str, Any], only_if_absent: str | None = None
    ) -> bool:
        row = self.rows.setdefault((job_id, f"CHUNK#{chunk:04d}"), {"chunk": chunk})
        if only_if_absent and only_if_absent in row:
            return False
        row.update(json.loads(json.dumps(fields, default=str)))
        return True


_real_results: Any = None


class DiscardingResults:
    """The results table: each row is built (that is the domain's work), then dropped."""

    def __init__(self, table_name: str, bucket: str, row_max_bytes: int, retention_days: int = 0) -> None:
        self._bucket, self._row_max_bytes = bucket, row_max_bytes
        self._expires_at = None  # no TTL: the benchmark keeps no rows

    @classmethod
    def for_writing(cls, settings: Any, bucket: str) -> DiscardingResults:
        return cls(settings.results_table, bucket, settings.result_row_max_bytes)

    def write(self, job_id: str, results: Iterator[Any]) -> None:
        row_for = _real_results.row_for
        for result in results:
            row_for(self, job_id, result)  # needs only _bucket, _row_max_bytes and _expires_at


# ------------------------------------------------------------------ provider output
_ANSWERS = (
    "Billing. Reply: Sorry about the double charge, we have refunded the second payment.",
    "Bug. Reply: Thanks for the report, our team reproduced the crash and a fix ships this week.",
    "How-to. Reply: Open Invoices, select the months you need and choose Export as PDF.",
    "Account. Reply: We have unlocked the account; please reset the password once more.",
)


def openai_output_line(custom_id: str, n: int) -> dict[str, Any]:
    """A successful line of an OpenAI batch output file, shaped like the real ones."""
    content = _ANSWERS[n % len(_ANSWERS)] + " " + "Let us know if anything else comes up. " * (n % 4)
    prompt, completion = 90 + n % 60, 20 + len(content) // 4
    return {
        "id": f"batch_req_{n:08x}",
        "custom_id": custom_id,
        "response": {
            "status_code": 200,
            "request_id": f"req_{n:08x}",
            "body": {
                "id": f"chatcmpl-{n:08x}",
                "object": "chat.completion",
                "created": 1_760_000_000 + n,
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                    "prompt_tokens_details": {"cached_tokens": 0},
                },
                "system_fingerprint": "fp_0ba0d124f1",
            },
        },
        "error": None,
    }


class LocalOutputProvider:
    """A provider whose finished batch is the chunk's own requests answered, in a shuffled order,
    through the real OpenAI output-line parser (no SDK, no network)."""

    name = "openai"

    def __init__(self, requests_file: Path) -> None:
        self._requests_file = requests_file

    def iter_results(self, provider_batch_id: str) -> Iterator[Any]:
        from batch_gateway.providers.openai.parsing import parse_openai_line
        from batch_gateway.providers.parsing import decode_result_line

        number = 0
        for parity in (1, 0):  # providers do not keep input order: odd lines first, then even ones
            with self._requests_file.open("rb") as requests:
                for index, line in enumerate(requests):
                    if index % 2 == parity:
                        number += 1
                        text = json.dumps(openai_output_line(json.loads(line)["custom_id"], index))
                        yield parse_openai_line(decode_result_line(text, source="output", number=number))
