"""moto's own IAM enforcement as the offline stack switches it on: role credentials per principal.

A role's assumed credentials sign the calls made for it (also with a client made before), the
admin's the rest; moto refuses what the role lacks and is kept from refusing what AWS allows (a
table ARN it never sees, an Allow with a condition, a bucket policy's conditional Deny).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from batch_gateway_local.stack.iam.calls import Where
from batch_gateway_local.stack.iam.credentials import create_identities, sign_as_principals
from batch_gateway_local.stack.iam.moto_enforcement import moto_enforcement
from batch_gateway_local.stack.iam.recorder import IamCheck, acting_for
from batch_gateway_local.stack.iam.roles import FunctionPolicy

WHERE = Where("aws", "us-east-1", "123456789012")
ROLE_ARN = "arn:aws:iam::123456789012:role/"
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/jobs"
STATEMENTS = [
    {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": TABLE},
    {
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": "arn:aws:s3:::data",
        "Condition": {"StringLike": {"s3:prefix": "staging/*"}},
    },
]
TLS_ONLY = {
    "Statement": [
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::data", "arn:aws:s3:::data/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ]
}


@pytest.fixture
def enforced(monkeypatch: pytest.MonkeyPatch) -> Iterator[IamCheck]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    with mock_aws(), ExitStack() as stack:
        session = boto3.session.Session()
        iam = session.client("iam")
        iam.create_role(RoleName="worker", AssumeRolePolicyDocument=json.dumps({"Statement": []}))
        policy = json.dumps({"Version": "2012-10-17", "Statement": STATEMENTS})
        iam.put_role_policy(RoleName="worker", PolicyName="p", PolicyDocument=policy)
        s3 = session.client("s3")
        s3.create_bucket(Bucket="data")
        s3.put_bucket_policy(Bucket="data", Policy=json.dumps(TLS_ONLY))
        session.client("dynamodb").create_table(
            TableName="jobs",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        principals = {ROLE_ARN + "worker": FunctionPolicy("Worker", "worker", "worker")}
        check = IamCheck(principals, WHERE)
        stack.enter_context(sign_as_principals(create_identities(session, principals, ROLE_ARN)))
        stack.enter_context(moto_enforcement(WHERE, check.record_moto_decision))
        yield check


def test_a_principal_signs_with_its_role_and_the_rest_with_the_admin(enforced: IamCheck) -> None:
    sts = boto3.client("sts")  # made outside: the credentials are chosen per call
    assert sts.get_caller_identity()["Arn"].endswith(":user/offline-stack-admin")
    with acting_for(ROLE_ARN + "worker"):
        assert ":assumed-role/worker/" in sts.get_caller_identity()["Arn"]


def test_moto_allows_what_the_role_grants_and_aws_would_allow(enforced: IamCheck) -> None:
    with acting_for(ROLE_ARN + "worker"):
        boto3.client("dynamodb").get_item(TableName="jobs", Key={"pk": {"S": "a"}})  # moto sees "*"
        boto3.client("s3").list_objects_v2(Bucket="data", Prefix="staging/")  # a conditional Deny: skipped
    assert enforced.moto_checked == {"Worker": 2}
    assert enforced.denied == []


def test_moto_refuses_what_the_role_lacks_and_it_is_recorded(enforced: IamCheck) -> None:
    with acting_for(ROLE_ARN + "worker"), pytest.raises(ClientError, match="AccessDenied"):
        boto3.client("dynamodb").put_item(TableName="jobs", Item={"pk": {"S": "a"}})
    [denied] = enforced.denied
    assert denied.describe().startswith("Worker may not dynamodb:PutItem")
