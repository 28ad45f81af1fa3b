"""The offline IAM evaluator: what a statement allows, and what IAM authorizes for a call."""

from __future__ import annotations

from batch_gateway_local.stack.iam.calls import Where, requests_for
from batch_gateway_local.stack.iam.policy import Request, Statement, evaluate

BUCKET = "arn:aws:s3:::data"
WHERE = Where("aws", "us-east-1", "123456789012")


def statement(**raw: object) -> Statement:
    return Statement.parse("p", 0, {"Effect": "Allow", **raw})


def test_action_wildcards_are_case_insensitive_and_resources_are_not() -> None:
    s = statement(Action="S3:Get*", Resource=f"{BUCKET}/inbox/*")
    assert evaluate([s], Request("s3:GetObject", f"{BUCKET}/inbox/a.jsonl")).allowed
    assert not evaluate([s], Request("s3:PutObject", f"{BUCKET}/inbox/a.jsonl")).allowed
    assert not evaluate([s], Request("s3:GetObject", f"{BUCKET}/INBOX/a.jsonl")).allowed


def test_an_explicit_deny_wins_and_not_action_excludes() -> None:
    allow = statement(Action="dynamodb:*", Resource="*")
    deny = Statement.parse("p", 1, {"Effect": "Deny", "NotAction": "dynamodb:GetItem", "Resource": "*"})
    assert evaluate([allow, deny], Request("dynamodb:GetItem", "arn:t")).allowed
    decision = evaluate([allow, deny], Request("dynamodb:DeleteItem", "arn:t"))
    assert (decision.allowed, decision.denied_by) == (False, "p/#1")


def test_s3_prefix_condition_of_a_listing() -> None:
    s = statement(
        Action="s3:ListBucket", Resource=BUCKET, Condition={"StringLike": {"s3:prefix": "staging/*"}}
    )
    [ok] = requests_for("s3", "ListObjectsV2", {"Bucket": "data", "Prefix": "staging/j1/"}, WHERE)
    [other] = requests_for("s3", "ListObjectsV2", {"Bucket": "data", "Prefix": "results/"}, WHERE)
    assert evaluate([s], ok).allowed
    assert not evaluate([s], other).allowed


def test_what_s3_and_dynamodb_calls_authorize() -> None:
    [head] = requests_for("s3", "HeadObject", {"Bucket": "data", "Key": "inbox/a", "VersionId": "v1"}, WHERE)
    assert head == Request("s3:GetObjectVersion", f"{BUCKET}/inbox/a")
    copy = requests_for(
        "s3",
        "CopyObject",
        {"Bucket": "data", "Key": "inbox/b", "CopySource": {"Bucket": "data", "Key": "s/a"}},
        WHERE,
    )
    assert [r.action for r in copy] == ["s3:PutObject", "s3:GetObject"]
    [query] = requests_for("dynamodb", "Query", {"TableName": "jobs", "IndexName": "ByDate"}, WHERE)
    assert query.resource == "arn:aws:dynamodb:us-east-1:123456789012:table/jobs/index/ByDate"
    transact = requests_for(
        "dynamodb",
        "TransactWriteItems",
        {"TransactItems": [{"Put": {"TableName": "a"}}, {"Update": {"TableName": "b"}}]},
        WHERE,
    )
    assert [r.action for r in transact] == ["dynamodb:PutItem", "dynamodb:UpdateItem"]


def test_bedrock_job_creation_passes_the_service_role_to_bedrock_only() -> None:
    requests = requests_for(
        "bedrock", "CreateModelInvocationJob", {"modelId": "m1", "roleArn": "arn:aws:iam::1:role/r"}, WHERE
    )
    pass_role = statement(
        Action="iam:PassRole",
        Resource="arn:aws:iam::1:role/r",
        Condition={"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}},
    )
    assert requests[0].resource == "arn:aws:bedrock:us-east-1::foundation-model/m1"
    assert evaluate([pass_role], requests[-1]).allowed
    assert requests_for("sts", "GetCallerIdentity", {}, WHERE) == []


def test_a_call_that_names_no_resource_is_checked_on_its_action_only() -> None:
    s = statement(Action="states:SendTaskSuccess", Resource="arn:aws:states:us-east-1:1:stateMachine:m")
    [wake] = requests_for("states", "SendTaskSuccess", {"taskToken": "t"}, WHERE)
    assert evaluate([s], wake).allowed
    assert not evaluate([s], Request("states:SendTaskFailure", "*")).allowed


def test_the_report_finds_the_reason_on_a_statements_sid_line() -> None:
    from batch_gateway_local.stack.iam.report import Grant, reason_for, template_reasons

    text = "Resources:\n  IntakeFunction:\n    Properties:\n      Policies:\n        - Statement:\n            - Sid: ReadInbox  # iam: only when versioning is suspended\n"
    reasons = template_reasons(text)
    grant = Grant(
        "IntakeFunction", "IntakeFunctionRolePolicy0/ReadInbox", "s3:GetObject", "arn:aws:s3:::b/inbox/*"
    )
    assert reason_for(grant, reasons, {}) == "only when versioning is suspended"
    assert reason_for(Grant("IntakeFunction", "P/Other", "s3:GetObject", "*"), reasons, {}) is None
