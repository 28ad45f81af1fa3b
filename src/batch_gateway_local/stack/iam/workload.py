"""The whole jobs ``make iam-report`` runs: small, but through every function of the template.

Each provider once (lines skipped at intake, several chunks), a rejected file, a provider batch
that fails and one with failed items, the API (submit, list, status, results, a presigned link,
cancel), the scheduler with a scheduled file and the reconciler. Returns the stack's IAM record.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3

from batch_gateway.models import JobSpec
from batch_gateway_local.stack.iam.recorder import IamCheck
from batch_gateway_local.stack.local_gateway import LocalGateway, LocalOptions
from batch_gateway_local.stack.sam.template import load_template

SIGNED = "AWS4-HMAC-SHA256 Credential=AKIDLOCAL/20260101/us-east-1/execute-api/aws4_request, Signature=0"
BEDROCK_MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


def _lines(count: int, prefix: str, bad: bool = True) -> bytes:
    rows = [json.dumps({"custom_id": f"{prefix}-{n}", "user_message": f"question {n}"}) for n in range(count)]
    return ("\n".join(rows + (["not json"] if bad else [])) + "\n").encode()


def _jobs(gateway: LocalGateway, folder: Path) -> None:
    source = folder / "in.jsonl"
    source.write_bytes(_lines(5, "r"))
    waits = []
    for provider, model in (
        ("openai", "small-model"),
        ("anthropic", "claude-3-5-haiku-latest"),
        ("azure-openai", "small-model"),
        ("bedrock", BEDROCK_MODEL),
    ):
        spec = JobSpec.model_validate({"provider": provider, "model": model, "on_invalid": "skip"})
        waits.append(gateway.submit_file(source, spec, key=f"inbox/{provider}.jsonl"))
    waits.append(
        gateway.submit_file(source, JobSpec(provider="openai", model="m"), key="inbox/rejected.jsonl")
    )
    for job_id in waits:
        gateway.wait(job_id, timeout_s=120)
    good = folder / "good.jsonl"
    good.write_bytes(_lines(3, "g", bad=False))
    for scenario in ("fail", "item-errors"):
        gateway.emulator.scenario = scenario
        job_id = gateway.submit_file(
            good, JobSpec(provider="openai", model="m"), key=f"inbox/{scenario}.jsonl"
        )
        gateway.wait(job_id, timeout_s=120)
    gateway.emulator.scenario = "ok"


def _api(gateway: LocalGateway) -> None:
    from batch_gateway_local.api_front.server import api_server_for

    front = api_server_for(gateway, port=0)
    try:

        def call(method: str, path: str, body: Any = None, key: str | None = None) -> Any:
            raw = json.dumps(body).encode() if body is not None else b""
            headers = [("Authorization", SIGNED), ("Content-Type", "application/json")]
            headers += [("Idempotency-Key", key)] if key else []
            _, _, answer = front.handle(method, f"/v1{path}", headers, raw, "127.0.0.1")
            return json.loads(answer or b"null")

        items = [{"custom_id": f"a-{n}", "user_message": f"question {n}"} for n in range(2)]
        body = {"provider": "anthropic", "model": "claude-3-5-haiku-latest", "items": items}
        job = call("POST", "/batches", body, key="retry-1")
        call("POST", "/batches", body, key="retry-1")  # an idempotent retry finds the first upload
        boto3.client("s3").put_object(
            Bucket=gateway.bucket, Key="uploads/big.jsonl", Body=_lines(2, "u", bad=False)
        )
        source = {"provider": "anthropic", "model": "claude-3-5-haiku-latest"}
        copied = call("POST", "/batches", {**source, "source": f"s3://{gateway.bucket}/uploads/big.jsonl"})
        gateway.wait(job["job_id"], timeout_s=120)
        gateway.wait(copied["job_id"], timeout_s=120)
        call("GET", "/batches")
        call("GET", f"/batches/{job['job_id']}")
        call("GET", f"/batches/{job['job_id']}/results")
        call("GET", f"/batches/{job['job_id']}/results/a-1")
        call("GET", f"/batches/{job['job_id']}/results?format=url")
        call("POST", f"/batches/{job['job_id']}/cancel")
    finally:
        front._server.server_close()


def _schedules(gateway: LocalGateway) -> None:
    boto3.client("s3").put_object(
        Bucket=gateway.bucket,
        Key="scheduled/tickets.jsonl",
        Body=_lines(2, "s", bad=False),
        Metadata={"provider": "anthropic", "model": "claude-3-5-haiku-latest"},
    )
    report = gateway.run_scheduler()
    for job_id in report.get("started", []) if isinstance(report.get("started"), list) else []:
        gateway.wait(str(job_id), timeout_s=120)
    gateway.run_reconciler()


def run_workload() -> tuple[IamCheck, str, dict[str, str]]:
    """Run the jobs on a fresh local gateway; returns (IAM record, template text, policy-template names)."""
    with (
        tempfile.TemporaryDirectory(prefix="iam-report-") as tmp,
        LocalGateway(LocalOptions(chunk_max_items=3)) as gateway,
    ):
        assert gateway.stack is not None
        assert gateway.stack.iam_check is not None
        _jobs(gateway, Path(tmp))
        _api(gateway)
        _schedules(gateway)
        text = gateway.stack.template_path.read_text()
        names = policy_template_names(load_template(gateway.stack.template_path))
        return gateway.stack.iam_check, text, names


def policy_template_names(template: Mapping[str, Any]) -> dict[str, str]:
    """Translated policy name (``<Resource>RolePolicy<n>``) -> ``<SAM policy template>#<k>``, its k-th use."""
    names: dict[str, str] = {}
    for logical_id, resource in (template.get("Resources") or {}).items():
        policies = ((resource or {}).get("Properties") or {}).get("Policies")
        serverless = ("AWS::Serverless::Function", "AWS::Serverless::StateMachine")
        if resource.get("Type") not in serverless or not isinstance(policies, list):
            continue
        uses: dict[str, int] = {}
        for index, entry in enumerate(policies):
            if isinstance(entry, dict) and len(entry) == 1 and next(iter(entry)).endswith("Policy"):
                name = next(iter(entry))
                uses[name] = uses.get(name, -1) + 1
                names[f"{logical_id}RolePolicy{index}"] = f"{name}#{uses[name]}"
    return names
