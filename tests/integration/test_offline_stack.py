"""The offline stack: a SAM template deployed into moto, handlers running in-process.

Runs against the toy stack in tests/fixtures/toy_stack, which has the resource kinds of the real
template: bucket -> Lambda notification, table, layer, Globals, per-function environment, a state
machine from an ASL file with DefinitionSubstitutions, a secret, Outputs.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import moto
import pytest
from moto.awslambda.models import LambdaFunction

from batch_gateway_local.stack.errors import OfflineStackError
from batch_gateway_local.stack.lambda_runtime.runtime import EXPECTED_INVOKE_PARAMETERS, INVOKE_METHOD
from batch_gateway_local.stack.moto_checks import TESTED_MOTO_VERSION, check_moto_internals
from batch_gateway_local.stack.offline_stack import OfflineStack

TOY = Path(__file__).resolve().parents[1] / "fixtures" / "toy_stack"
TEMPLATE = TOY / "template.yaml"
ORIGINAL_INVOKE = getattr(LambdaFunction, INVOKE_METHOD)


@pytest.fixture
def stack() -> Iterator[OfflineStack]:
    with OfflineStack(TEMPLATE, TOY, definition_substitution_overrides={"WaitSeconds": "0"}) as running:
        yield running


def upload_job(stack: OfflineStack, job_id: str, items: list[dict[str, Any]]) -> str:
    """Drop a JSONL file into inbox/ and return the execution the intake function started."""
    body = "".join(json.dumps(item) + "\n" for item in items).encode()
    before = len(stack.invocations)
    stack.client("s3").put_object(Bucket=stack.outputs["BucketName"], Key=f"inbox/{job_id}.jsonl", Body=body)
    intake = [i for i in stack.invocations[before:] if i.function_name == stack.functions["IntakeFunction"]]
    assert len(intake) == 1, [i.function_name for i in stack.invocations[before:]]
    assert intake[0].ok, intake[0].logs
    (execution_arn,) = intake[0].result["started"]
    return str(execution_arn)


def job_row(stack: OfflineStack, job_id: str) -> dict[str, Any]:
    item = stack.client("dynamodb").get_item(TableName=stack.outputs["TableName"], Key={"pk": {"S": job_id}})[
        "Item"
    ]
    return dict(item)


def invoke(stack: OfflineStack, function: str, payload: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    response = stack.client("lambda").invoke(
        FunctionName=stack.functions[function], Payload=json.dumps(payload).encode()
    )
    return response, json.loads(response["Payload"].read())


# -- moto's private hooks ------------------------------------------------------------------------


def test_moto_private_hooks_are_where_we_expect() -> None:
    """Fails loudly when a moto upgrade moves what the offline stack patches."""
    assert moto.__version__ == TESTED_MOTO_VERSION, (
        f"moto {moto.__version__} is installed, the offline stack was written against {TESTED_MOTO_VERSION}: "
        "re-check moto.awslambda.models.LambdaFunction._invoke_lambda and the other hooks, then update"
    )
    method = getattr(LambdaFunction, INVOKE_METHOD, None)
    assert method is not None, f"moto.awslambda.models.LambdaFunction.{INVOKE_METHOD} is gone"
    signature = inspect.signature(method)
    assert tuple(signature.parameters) == EXPECTED_INVOKE_PARAMETERS
    assert "tuple[str, bool, str]" in str(signature.return_annotation)
    assert check_moto_internals() == []


# -- deployment ----------------------------------------------------------------------------------


def test_stack_is_deployed_from_the_template(stack: OfflineStack) -> None:
    assert set(stack.outputs) == {
        "BucketName",
        "TableName",
        "StateMachineArn",
        "IntakeFunctionArn",
        "WorkFunctionName",
        "SecretArn",
    }
    assert stack.outputs["BucketName"] == f"offline-{stack.account_id}-data"
    assert stack.skipped_resources == {}
    assert set(stack.functions) == {
        "IntakeFunction",
        "WorkFunction",
        "FinalizeFunction",
        "MarkFailedFunction",
    }

    secret = stack.client("secretsmanager").get_secret_value(SecretId=stack.outputs["SecretArn"])
    assert json.loads(secret["SecretString"]) == {"api_key": "sk-toy"}

    lam = stack.client("lambda")
    work = lam.get_function_configuration(FunctionName=stack.functions["WorkFunction"])
    assert (work["MemorySize"], work["Timeout"], work["Runtime"]) == (512, 30, "python3.12")
    assert [layer["Arn"].split(":")[-2] for layer in work["Layers"]] == ["SharedLayer"]
    assert work["Environment"]["Variables"]["TABLE_NAME"] == stack.outputs["TableName"]

    s3 = stack.client("s3")
    notification = s3.get_bucket_notification_configuration(Bucket=stack.outputs["BucketName"])
    (config,) = notification["LambdaFunctionConfigurations"]
    assert config["LambdaFunctionArn"] == stack.outputs["IntakeFunctionArn"]
    assert config["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "inbox/"}]
    assert s3.get_bucket_versioning(Bucket=stack.outputs["BucketName"])["Status"] == "Enabled"

    # the state machine runs the real ASL file with the substitutions resolved from the stack
    machine = stack.client("stepfunctions").describe_state_machine(
        stateMachineArn=stack.outputs["StateMachineArn"]
    )
    definition = machine["definition"]
    assert "${" not in definition
    asl = json.loads(definition)
    assert (
        asl["States"]["ProcessItems"]["ItemProcessor"]["States"]["Poll"]["Resource"]
        == lam.get_function_configuration(FunctionName=stack.functions["WorkFunction"])["FunctionArn"]
    )
    assert (
        asl["States"]["ProcessItems"]["ItemSelector"]["wait_seconds"] == "0"
    )  # override of the 60 s default
    assert asl["States"]["MarkRunning"]["Parameters"]["TableName"] == stack.outputs["TableName"]
    greeting = asl["States"]["MarkRunning"]["Parameters"]["ExpressionAttributeValues"][":g"]["S"]
    assert greeting == "hello from offline"


def test_unrelated_uploads_do_not_trigger(stack: OfflineStack) -> None:
    stack.client("s3").put_object(Bucket=stack.outputs["BucketName"], Key="elsewhere/x.jsonl", Body=b"{}\n")
    assert stack.invocations == []


# -- whole jobs ----------------------------------------------------------------------------------


def test_upload_runs_the_whole_job(stack: OfflineStack) -> None:
    items: list[dict[str, Any]] = [
        {"id": "a", "polls": 2},
        {"id": "b"},
        {"id": "c", "flaky": True},  # first Submit raises TransientError -> Retry
        {"id": "d", "polls": 3},
        {"id": "e"},
    ]
    put = stack.client("s3")
    execution_arn = upload_job(stack, "job-ok", items)
    description = stack.wait_for_execution(execution_arn, timeout=120)
    assert description["status"] == "SUCCEEDED", description
    assert json.loads(description["output"]) == {
        "job_id": "job-ok",
        "status": "completed",
        "result_key": "results/job-ok/result.json",
    }

    results = json.loads(
        put.get_object(Bucket=stack.outputs["BucketName"], Key="results/job-ok/result.json")["Body"].read()
    )
    assert [r["id"] for r in results] == ["a", "b", "c", "d", "e"]
    assert [r["polls"] for r in results] == [2, 1, 1, 3, 1]
    assert all(r["done"] and r["remaining_ms_positive"] and r["memory"] == 512 for r in results)

    row = job_row(stack, "job-ok")
    assert row["status"] == {"S": "completed"}
    assert row["result_count"] == {"N": "5"}
    assert row["greeting"] == {"S": "hello from offline"}  # written by the dynamodb:updateItem task
    assert row["api_key_ok"] == {"BOOL": True}
    versions = put.list_object_versions(Bucket=stack.outputs["BucketName"], Prefix="inbox/job-ok.jsonl")[
        "Versions"
    ]
    assert row["source_version"] == {"S": versions[0]["VersionId"]}
    attempts = job_row(stack, "attempts#job-ok#c")
    assert attempts["attempts"] == {"N": "2"}

    history = stack.client("stepfunctions").get_execution_history(executionArn=execution_arn, maxResults=1000)
    types = {event["type"] for event in history["events"]}
    assert "TaskScheduled" in types  # arn:aws:states:::lambda:invoke and dynamodb:updateItem
    assert "LambdaFunctionScheduled" in types  # plain function ARN as Resource
    assert {"MapStateStarted", "WaitStateEntered", "ChoiceStateEntered", "PassStateEntered"} <= types

    failed = stack.failed_invocations()
    assert [(i.error or {}).get("errorType") for i in failed] == ["TransientError"]
    assert "TransientError: first attempt fails" in stack.function_logs("WorkFunction")


def test_handler_exception_goes_to_the_catch(stack: OfflineStack) -> None:
    execution_arn = upload_job(stack, "job-bad", [{"id": "fine"}, {"id": "x", "fail": True}])
    description = stack.wait_for_execution(execution_arn, timeout=120)
    assert description["status"] == "FAILED"
    assert description["error"] == "JobFailed"

    row = job_row(stack, "job-bad")
    assert row["status"] == {"S": "failed"}
    assert row["error_name"] == {"S": "ProviderRejectedError"}
    cause = json.loads(row["error_cause"]["S"])
    assert cause["errorType"] == "ProviderRejectedError"
    assert cause["errorMessage"] == "provider rejected item x"
    assert any("functions/work/app.py" in frame for frame in cause["stackTrace"])
    assert "result_key" not in row


def test_invoke_api_error_payload(stack: OfflineStack) -> None:
    response, payload = invoke(stack, "WorkFunction", {"action": "bogus"})
    assert response.get("FunctionError")
    assert payload["errorType"] == "ValueError"
    assert payload["errorMessage"] == "unknown action 'bogus'"
    assert isinstance(payload["stackTrace"], list)
    assert payload["stackTrace"]


def test_s3_event_has_the_fields_aws_sends(stack: OfflineStack) -> None:
    upload_job(stack, "job-event", [{"id": "a"}])
    intake = next(i for i in stack.invocations if i.function_name == stack.functions["IntakeFunction"])
    (record,) = intake.event["Records"]
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["object"]["key"] == "inbox/job-event.jsonl"  # moto sends inbox%2Fjob-event.jsonl
    assert record["s3"]["object"]["versionId"]
    assert record["s3"]["object"]["sequencer"]
    assert record["userIdentity"]["principalId"]
    assert record["requestParameters"]["sourceIPAddress"]
    assert set(record["responseElements"]) == {"x-amz-request-id", "x-amz-id-2"}


# -- environment ---------------------------------------------------------------------------------


def test_each_function_sees_only_its_own_environment(stack: OfflineStack) -> None:
    before = dict(os.environ)
    _, work = invoke(stack, "WorkFunction", {"action": "env"})
    assert work["env"] == {
        "TABLE_NAME": stack.outputs["TableName"],
        "GREETING": "hello",
        "ONLY_INTAKE": "<unset>",
        "ONLY_WORK": "work-only",
        "BUCKET_NAME": "<unset>",
        "STATE_MACHINE_ARN": "<unset>",
        "AWS_LAMBDA_FUNCTION_NAME": stack.functions["WorkFunction"],
    }
    assert work["memory"] == 512

    execution_arn = upload_job(stack, "job-env", [{"id": "a"}])
    # handlers swap os.environ process-wide while they run: let the execution finish first
    assert stack.wait_for_execution(execution_arn, timeout=120)["status"] == "SUCCEEDED"
    intake_env = job_row(stack, "job-env")["intake_env"]["M"]
    assert intake_env["ONLY_INTAKE"] == {"S": "intake-only"}
    assert intake_env["ONLY_WORK"] == {"S": "<unset>"}
    assert intake_env["STATE_MACHINE_ARN"] == {"S": stack.outputs["StateMachineArn"]}
    assert intake_env["BUCKET_NAME"] == {"S": stack.outputs["BucketName"]}

    # the test process' environment is untouched between invocations
    assert dict(os.environ) == before
    assert "TABLE_NAME" not in os.environ
    assert "AWS_LAMBDA_FUNCTION_NAME" not in os.environ


def test_nested_invocation_restores_the_outer_environment(stack: OfflineStack) -> None:
    _, nested = invoke(
        stack, "WorkFunction", {"action": "nested", "target": stack.functions["MarkFailedFunction"]}
    )
    assert nested["before"] == nested["after"]
    assert nested["before"]["ONLY_WORK"] == "work-only"
    assert nested["inner"]["env"]["ONLY_WORK"] == "<unset>"
    assert nested["inner"]["env"]["AWS_LAMBDA_FUNCTION_NAME"] == stack.functions["MarkFailedFunction"]
    assert nested["inner"]["env"]["TABLE_NAME"] == stack.outputs["TableName"]


# -- timing, lifecycle, errors -------------------------------------------------------------------


def test_wait_state_sleeps_for_the_substituted_seconds() -> None:
    with OfflineStack(
        TEMPLATE, definition_substitution_overrides={"WaitSeconds": "1"}, stack_name="slow"
    ) as stack:
        execution_arn = upload_job(stack, "job-slow", [{"id": "a", "polls": 2}])
        started = time.monotonic()
        description = stack.wait_for_execution(execution_arn, timeout=120)
        elapsed = time.monotonic() - started
    assert description["status"] == "SUCCEEDED"
    assert elapsed >= 1.9  # two Wait states of 1 s each, slept for real


def test_two_stacks_one_after_the_other() -> None:
    env_before = dict(os.environ)
    for _ in range(2):
        with OfflineStack(TEMPLATE, parameter_overrides={"WaitSeconds": "0"}) as stack:
            assert getattr(LambdaFunction, INVOKE_METHOD) is not ORIGINAL_INVOKE
            execution_arn = upload_job(stack, "same-job", [{"id": "a"}])  # same name: fresh mock each time
            assert stack.wait_for_execution(execution_arn, timeout=120)["status"] == "SUCCEEDED"
            assert (
                len([i for i in stack.invocations if i.function_name == stack.functions["WorkFunction"]]) == 2
            )
        assert getattr(LambdaFunction, INVOKE_METHOD) is ORIGINAL_INVOKE
        assert dict(os.environ) == env_before
        assert not [name for name in sys.modules if name.startswith("_offline_lambda__")]


def test_unknown_overrides_are_rejected() -> None:
    with (
        pytest.raises(OfflineStackError, match="NoSuchParameter"),
        OfflineStack(TEMPLATE, parameter_overrides={"NoSuchParameter": "1"}),
    ):
        pass
    with (
        pytest.raises(OfflineStackError, match="WaitSecondz"),
        OfflineStack(TEMPLATE, definition_substitution_overrides={"WaitSecondz": "0"}),
    ):
        pass
    assert getattr(LambdaFunction, INVOKE_METHOD) is ORIGINAL_INVOKE


def write_template(directory: Path, resources: str, outputs: str = "") -> Path:
    """A one-function SAM template plus extra ``resources`` (and ``outputs``), YAML without indentation."""
    (directory / "fn").mkdir()
    (directory / "fn" / "app.py").write_text("def handler(event, context):\n    return event\n")
    path = directory / "template.yaml"
    text = textwrap.dedent(
        """\
        AWSTemplateFormatVersion: 2010-09-09
        Transform: AWS::Serverless-2016-10-31
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: fn/
              Handler: app.handler
              Runtime: python3.12
        """
    )
    text += textwrap.indent(textwrap.dedent(resources), "  ")
    if outputs:
        text += "Outputs:\n" + textwrap.indent(textwrap.dedent(outputs), "  ")
    path.write_text(text)
    return path


def test_unsupported_resource_types_become_placeholders(tmp_path: Path) -> None:
    template = write_template(
        tmp_path,
        """\
        Alarm:
          Type: AWS::CloudWatch::Alarm
          Properties:
            ComparisonOperator: GreaterThanThreshold
            EvaluationPeriods: 1
            Threshold: 1
            MetricName: Errors
            Namespace: AWS/Lambda
            Period: 60
            Statistic: Sum
        """,
        outputs="""\
        AlarmName:
          Value: !Ref Alarm
        AlarmArn:
          Value: !GetAtt Alarm.Arn
        """,
    )
    with OfflineStack(template) as stack:
        assert stack.skipped_resources == {"Alarm": "AWS::CloudWatch::Alarm"}
        assert stack.outputs["AlarmName"] == "offline-skipped-Alarm"
        assert stack.outputs["AlarmArn"] == "offline-skipped-Alarm.Arn"
        _, echoed = invoke(stack, "Fn", {"hello": "world"})
        assert echoed == {"hello": "world"}


def test_resource_failure_is_reported_with_its_logical_id(tmp_path: Path) -> None:
    template = write_template(
        tmp_path,
        """\
        BrokenPermission:
          Type: AWS::Lambda::Permission
          Properties:
            Action: lambda:InvokeFunction
            FunctionName: no-such-function
            Principal: s3.amazonaws.com
        """,
    )
    with (
        pytest.raises(OfflineStackError, match=r"BrokenPermission \(AWS::Lambda::Permission\)"),
        OfflineStack(template),
    ):
        pass
    assert getattr(LambdaFunction, INVOKE_METHOD) is ORIGINAL_INVOKE


API_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: v1
      Auth: {ApiKeyRequired: true, UsagePlan: {CreateUsagePlan: PER_API}}
  HttpApi:
    Type: AWS::Serverless::HttpApi
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/
      Handler: app.handler
      Runtime: python3.12
      AutoPublishAlias: live
      Events:
        Post: {Type: Api, Properties: {RestApiId: !Ref Api, Path: /jobs, Method: post}}
        Get: {Type: HttpApi, Properties: {ApiId: !Ref HttpApi, Path: /jobs, Method: get}}
        Every5: {Type: Schedule, Properties: {Schedule: rate(5 minutes)}}
        Every5V2: {Type: ScheduleV2, Properties: {ScheduleExpression: rate(5 minutes)}}
      Environment:
        Variables:
          QUEUE_URL: !Ref Queue
  Queue: {Type: AWS::SQS::Queue}
  Topic: {Type: AWS::SNS::Topic}
  Subscription:
    Type: AWS::SNS::Subscription
    Properties: {TopicArn: !Ref Topic, Protocol: sqs, Endpoint: !GetAtt Queue.Arn}
Outputs:
  ApiUrl: {Value: !Sub "https://${Api}.execute-api.${AWS::Region}.amazonaws.com/v1"}
  Alias: {Value: !Ref Fn.Alias}
"""


def test_api_schedule_and_alias_resources(tmp_path: Path) -> None:
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text(
        "import os\n\ndef handler(event, context):\n    return {'queue': os.environ['QUEUE_URL'], 'event': event}\n"
    )
    (tmp_path / "template.yaml").write_text(API_TEMPLATE)
    with OfflineStack(tmp_path / "template.yaml") as stack:
        skipped = set(stack.skipped_resources.values())
        assert {"AWS::ApiGateway::RestApi", "AWS::ApiGateway::Stage", "AWS::ApiGatewayV2::Api"} <= skipped
        assert {"AWS::Scheduler::Schedule", "AWS::SNS::Subscription"} <= skipped
        assert stack.resource_types["FnEvery5"] == "AWS::Events::Rule"  # created, never fires
        assert stack.outputs["ApiUrl"] == "https://offline-skipped-Api.execute-api.us-east-1.amazonaws.com/v1"
        assert stack.outputs["Alias"].endswith(":live")
        response = stack.client("lambda").invoke(
            FunctionName=stack.outputs["Alias"], Payload=b'{"via": "alias"}'
        )
        payload = json.loads(response["Payload"].read())
        assert payload["event"] == {"via": "alias"}
        assert "/offline-Queue-" in payload["queue"]


def test_circular_dependency_is_reported(tmp_path: Path) -> None:
    template = write_template(
        tmp_path,
        """\
        A:
          Type: AWS::SQS::Queue
          Properties:
            QueueName: !Sub "${B.QueueName}-a"
        B:
          Type: AWS::SQS::Queue
          Properties:
            QueueName: !GetAtt A.QueueName
        """,
    )
    with (
        pytest.raises(OfflineStackError, match="circular dependency between resources: A -> B -> A"),
        OfflineStack(template),
    ):
        pass
