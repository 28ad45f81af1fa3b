"""The offline IAM check can fail: a template copy without one grant makes `local run` fail, naming it.

Without IntakeFunction's ReadInboxUploads, the upload's intake is answered AccessDenied, as AWS
would; without the state machine role's ReadJobManifests, the Distributed Map's ItemReader cannot
read the job's manifest; without the Bedrock service role's BedrockReadStagedRequests, Bedrock
(the emulator, acting as that role) cannot read the chunk it was given. Each time ``local run``
exits non-zero naming the principal, the denied action and the resource.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from batch_gateway_local.cli.commands import main
from batch_gateway_local.stack import local_gateway
from batch_gateway_local.stack.app_files import TEMPLATE

# IntakeFunction's statement from its Sid line (with its "# iam:" reason) to its Resource line.
READ_INBOX = re.compile(
    r"^ +- Sid: ReadInboxUploads\b.*\n(?: +(?:Effect|Action|Resource): .*\n){3}", re.MULTILINE
)
# The state machine's policy statement that lets its ItemReader read a job's manifest.
READ_MANIFESTS = re.compile(
    r"^ +- Statement:\n +- Sid: ReadJobManifests\b.*\n(?: +(?:Effect|Action|Resource): .*\n){3}", re.MULTILINE
)
# The Bedrock service role's read of the staged requests a job hands to Bedrock.
READ_STAGED_FOR_BEDROCK = re.compile(
    r"^ +- Sid: BedrockReadStagedRequests\b.*\n(?: +(?:Effect|Action|Resource): .*\n){3}", re.MULTILINE
)


def _local_run_without(
    statement: re.Pattern[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    provider: tuple[str, str] = ("openai", "m"),
) -> tuple[int, str]:
    without, removed = statement.subn("", TEMPLATE.read_text())
    assert removed == 1, "the statement this test removes changed: update its pattern"
    copy = tmp_path / "template.yaml"
    copy.write_text(without)
    monkeypatch.setattr(local_gateway, "TEMPLATE", copy)
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"custom_id": "a", "user_message": "hello"}) + "\n")
    args = ["local", "run", str(source), "--provider", provider[0], "--model", provider[1]]
    code = main([*args, "--out", str(tmp_path / "out"), "--timeout", "60"])
    return code, capsys.readouterr().err


def test_local_run_fails_naming_the_denied_action_when_intake_cannot_read_the_inbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _local_run_without(READ_INBOX, tmp_path, monkeypatch, capsys)

    assert code == 1
    assert "AccessDenied" in err
    assert "IntakeFunction may not s3:GetObjectVersion on arn:aws:s3:::" in err
    assert "/inbox/in.jsonl" in err


def test_local_run_fails_naming_the_state_machine_when_its_role_cannot_read_the_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _local_run_without(READ_MANIFESTS, tmp_path, monkeypatch, capsys)

    assert code == 1
    assert "BatchJobStateMachine may not s3:GetObject on arn:aws:s3:::" in err
    assert "/manifests/" in err


def test_local_run_fails_naming_the_bedrock_role_when_it_cannot_read_the_staged_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bedrock = ("bedrock", "anthropic.claude-3-5-haiku-20241022-v1:0")
    code, err = _local_run_without(READ_STAGED_FOR_BEDROCK, tmp_path, monkeypatch, capsys, bedrock)

    assert code == 1
    assert "BedrockBatchRole may not s3:GetObject on arn:aws:s3:::" in err
    assert "/chunk-0001.requests.jsonl" in err
