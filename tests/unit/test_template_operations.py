"""Operational guarantees of template.yaml that no linter checks: every function has its own log group
with the retention parameter and is covered by an error alarm and the dashboard; no function gets a
whole-bucket or whole-table CRUD policy; the state machine never logs execution data."""

from __future__ import annotations

import json
from typing import Any

import pytest

from batch_gateway_local.stack.app_files import TEMPLATE
from batch_gateway_local.stack.sam.template import load_template

RESOURCES: dict[str, Any] = load_template(TEMPLATE)["Resources"]
FUNCTIONS = sorted(name for name, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function")
ERROR_ALARMS = ("FunctionErrorsAlarm", "ServiceFunctionErrorsAlarm")
BROAD_POLICIES = {"S3CrudPolicy", "S3ReadPolicy", "S3WritePolicy", "S3FullAccessPolicy", "DynamoDBCrudPolicy"}


def _alarmed_functions(alarm: str) -> list[str]:
    functions = []
    for metric in RESOURCES[alarm]["Properties"]["Metrics"]:
        for dimension in metric.get("MetricStat", {}).get("Metric", {}).get("Dimensions", []):
            functions.append(dimension["Value"]["Ref"])
    return functions


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_logs_to_its_own_log_group_kept_for_the_retention_parameter(function: str) -> None:
    group = RESOURCES[function]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    assert RESOURCES[group]["Type"] == "AWS::Logs::LogGroup"
    assert RESOURCES[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_is_watched_by_one_error_alarm_and_the_dashboard(function: str) -> None:
    alarmed = [f for alarm in ERROR_ALARMS for f in _alarmed_functions(alarm)]
    assert alarmed.count(function) == 1
    body = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert f'"FunctionName", "${{{function}}}"' in body


def test_an_error_alarm_stays_within_cloudwatchs_ten_metrics() -> None:
    for alarm in ERROR_ALARMS:
        assert len(RESOURCES[alarm]["Properties"]["Metrics"]) <= 10


@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_function_gets_a_whole_bucket_or_whole_table_crud_policy(function: str) -> None:
    policies = RESOURCES[function]["Properties"].get("Policies", [])
    templates = {key for policy in policies if isinstance(policy, dict) for key in policy}
    assert not templates & BROAD_POLICIES


def test_the_state_machine_logs_errors_without_execution_data() -> None:
    logging = RESOURCES["BatchJobStateMachine"]["Properties"]["Logging"]
    assert logging["Level"] == "ERROR"
    assert logging["IncludeExecutionData"] is False


def test_the_dashboard_body_is_valid_json() -> None:
    body = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert json.loads(body)["widgets"]
