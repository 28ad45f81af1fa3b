"""The offline stack's record of each Distributed Map child's history (moto discards them): it only measures."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from batch_gateway_local.stack.sfn_history import (
    CHILD_FRAME_EVENTS,
    ChildExecutionHistories,
    execution_history,
    job_executions,
    workflow_report,
)

BUCKET = "history-bucket"
DEFINITION = {
    "StartAt": "Chunks",
    "States": {
        "Chunks": {
            "Type": "Map",
            "ItemReader": {
                "Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "JSON"},
                "Parameters": {"Bucket": BUCKET, "Key": "manifest.json"},
            },
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "Work",
                "States": {
                    "Work": {"Type": "Pass", "Next": "Again?"},
                    "Again?": {
                        "Type": "Choice",
                        "Choices": [{"Variable": "$.chunk", "NumericEquals": 2, "Next": "More"}],
                        "Default": "Done",
                    },
                    "More": {"Type": "Pass", "Next": "Done"},
                    "Done": {"Type": "Succeed"},
                },
            },
            "ResultPath": None,
            "End": True,
        }
    },
}


@pytest.fixture
def sfn(fake_aws_env: None) -> Iterator[Any]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="manifest.json", Body=json.dumps([{"chunk": n} for n in (1, 2, 3)]))
        yield boto3.client("stepfunctions")


def run(sfn: Any, arn: str, name: str) -> str:
    execution = str(sfn.start_execution(stateMachineArn=arn, name=name, input="{}")["executionArn"])
    deadline = time.monotonic() + 30
    while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not end"
        time.sleep(0.05)
    return execution


def test_each_child_gets_its_own_history_and_the_parent_is_unchanged(sfn: Any) -> None:
    arn = sfn.create_state_machine(
        name="job", definition=json.dumps(DEFINITION), roleArn="arn:aws:iam::123456789012:role/r"
    )["stateMachineArn"]
    plain = run(sfn, arn, "plain")
    with ChildExecutionHistories() as histories:
        measured = run(sfn, arn, "job-1")
    executions = job_executions(sfn, arn, "job-1", histories)

    # Measurement only: the parent's history is the same event for event, and so is the outcome.
    types = [[e["type"] for e in execution_history(sfn, x)] for x in (plain, measured)]
    assert types[0] == types[1]
    assert sfn.describe_execution(executionArn=measured)["status"] == "SUCCEEDED"
    # The job's execution, then one child per item, each with its own path's events.
    assert [e.name for e in executions] == ["job-1", "job-1/Chunks/0", "job-1/Chunks/1", "job-1/Chunks/2"]
    children = executions[1:]
    assert [c.chunk for c in children] == [1, 2, 3]
    assert {c.status for c in children} == {"SUCCEEDED"}
    # Pass, Choice, Succeed: 2 events each (entered, exited), plus the child's start and end; chunk 2 one Pass more.
    assert [c.state_transitions for c in children] == [3, 4, 3]
    assert children[1].history_events == children[0].history_events + 2
    assert children[0].history_events == 3 * 2 + CHILD_FRAME_EVENTS
    report = workflow_report(executions)
    assert report["largest"]["name"] == "job-1/Chunks/1"
    assert report["child_executions"] == 3
