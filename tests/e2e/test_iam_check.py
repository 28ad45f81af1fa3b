"""The offline IAM check can fail: without the intake function's read of inbox/, a job is refused.

A copy of template.yaml without IntakeFunction's ReadInboxUploads statement: the upload's intake
is answered AccessDenied, as AWS would, and ``local run`` exits non-zero naming the denied action,
the resource and the function.
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


def test_local_run_fails_naming_the_denied_action_when_intake_cannot_read_the_inbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = TEMPLATE.read_text()
    without, removed = READ_INBOX.subn("", text)
    assert removed == 1, "the statement this test removes changed: update READ_INBOX"
    copy = tmp_path / "template.yaml"
    copy.write_text(without)
    monkeypatch.setattr(local_gateway, "TEMPLATE", copy)
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"custom_id": "a", "user_message": "hello"}) + "\n")

    code = main(
        [
            "local",
            "run",
            str(source),
            "--provider",
            "openai",
            "--model",
            "m",
            "--out",
            str(tmp_path / "out"),
            "--timeout",
            "60",
        ]
    )

    err = capsys.readouterr().err
    assert code == 1
    assert "AccessDenied" in err
    assert "IntakeFunction may not s3:GetObjectVersion on arn:aws:s3:::" in err
    assert "/inbox/in.jsonl" in err
