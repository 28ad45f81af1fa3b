"""What IAM authorizes for one botocore call: the actions, the resource ARNs, the condition keys.

Most operations authorize ``<prefix>:<Operation>`` on the resource named by their parameters; the
exceptions are S3's (HeadObject is s3:GetObject, a version id makes it ...Version, multipart parts
are s3:PutObject, ListObjectsV2 is s3:ListBucket with ``s3:prefix``, CopyObject reads the source
too), DynamoDB's transactions and batches (each item's action on each table), Bedrock's job
creation (the model, and iam:PassRole of the service role with ``iam:PassedToService``). An
operation this module does not know is checked on resource ``*``: on its action only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from batch_gateway_local.stack.iam.policy import Request

# Calls IAM does not authorize (every identity may make them).
UNAUTHORIZED_CALLS = {("sts", "GetCallerIdentity")}

_PREFIX = {"monitoring": "cloudwatch", "states": "states"}


@dataclass(frozen=True)
class Where:
    partition: str
    region: str
    account: str

    def arn(self, service: str, rest: str, *, regional: bool = True, account: bool = True) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.region if regional else ''}:"
            f"{self.account if account else ''}:{rest}"
        )


def iam_prefix(signing_name: str) -> str:
    return _PREFIX.get(signing_name, signing_name)


def requests_for(prefix: str, operation: str, params: Mapping[str, Any], where: Where) -> list[Request]:
    """The IAM requests of one call (empty for calls IAM does not authorize)."""
    if (prefix, operation) in UNAUTHORIZED_CALLS:
        return []
    special = _SPECIAL.get(prefix)
    if special is not None:
        found = special(operation, params, where)
        if found is not None:
            return found
    return [Request(f"{prefix}:{operation}", _generic_resource(prefix, params, where))]


def _generic_resource(prefix: str, params: Mapping[str, Any], where: Where) -> str:
    for key in ("FunctionName", "stateMachineArn", "executionArn", "SecretId", "TableName"):
        value = params.get(key)
        if isinstance(value, str) and value.startswith("arn:"):
            return value
    return "*"


# -- S3 ------------------------------------------------------------------------------------------

_S3_OBJECT_ACTIONS = {
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListParts": "s3:ListMultipartUploadParts",
    "DeleteObject": "s3:DeleteObject",
    "GetObjectTagging": "s3:GetObjectTagging",
    "PutObjectTagging": "s3:PutObjectTagging",
}
_VERSIONED = {"s3:GetObject", "s3:DeleteObject", "s3:GetObjectTagging", "s3:PutObjectTagging"}
_S3_LISTS = {
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
}


def _s3(operation: str, params: Mapping[str, Any], where: Where) -> list[Request] | None:
    bucket = str(params.get("Bucket", ""))
    if operation in _S3_OBJECT_ACTIONS:
        action = _S3_OBJECT_ACTIONS[operation]
        if params.get("VersionId") and action in _VERSIONED:
            action += "Version"
        return [Request(action, f"arn:{where.partition}:s3:::{bucket}/{params.get('Key', '')}")]
    if operation in _S3_LISTS:
        context = (("s3:prefix", str(params.get("Prefix", ""))),)
        return [Request(_S3_LISTS[operation], f"arn:{where.partition}:s3:::{bucket}", context)]
    if operation in ("CopyObject", "UploadPartCopy"):
        source_bucket, source_key, version = _copy_source(params.get("CopySource"))
        read = "s3:GetObjectVersion" if version else "s3:GetObject"
        return [
            Request("s3:PutObject", f"arn:{where.partition}:s3:::{bucket}/{params.get('Key', '')}"),
            Request(read, f"arn:{where.partition}:s3:::{source_bucket}/{source_key}"),
        ]
    if operation == "DeleteObjects":
        objects = (params.get("Delete") or {}).get("Objects") or []
        return [
            Request(
                "s3:DeleteObjectVersion" if o.get("VersionId") else "s3:DeleteObject",
                f"arn:{where.partition}:s3:::{bucket}/{o.get('Key', '')}",
            )
            for o in objects
        ]
    if bucket:
        return [Request(f"s3:{operation}", f"arn:{where.partition}:s3:::{bucket}")]
    return None


def _copy_source(source: Any) -> tuple[str, str, str | None]:
    if isinstance(source, Mapping):
        return str(source.get("Bucket", "")), str(source.get("Key", "")), source.get("VersionId")
    text = unquote(str(source or "")).lstrip("/")
    path, _, query = text.partition("?versionId=")
    bucket, _, key = path.partition("/")
    return bucket, key, query or None


# -- DynamoDB ------------------------------------------------------------------------------------

_TRANSACT_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}


def _table_arn(name: str, where: Where) -> str:
    return name if name.startswith("arn:") else where.arn("dynamodb", f"table/{name}")


def _dynamodb(operation: str, params: Mapping[str, Any], where: Where) -> list[Request] | None:
    if operation in ("TransactWriteItems", "TransactGetItems"):
        return [
            Request(_TRANSACT_ACTIONS[kind], _table_arn(str(body.get("TableName", "")), where))
            for item in params.get("TransactItems") or []
            for kind, body in item.items()
        ]
    if operation in ("BatchWriteItem", "BatchGetItem"):
        return [
            Request(f"dynamodb:{operation}", _table_arn(str(t), where))
            for t in params.get("RequestItems") or {}
        ]
    table = params.get("TableName")
    if not isinstance(table, str):
        return None
    arn = _table_arn(table, where)
    if params.get("IndexName"):
        arn += f"/index/{params['IndexName']}"
    return [Request(f"dynamodb:{operation}", arn)]


# -- Step Functions, Secrets Manager, EventBridge, Bedrock, Lambda --------------------------------

_TASK_TOKEN_CALLS = {"SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat"}


def _states(operation: str, params: Mapping[str, Any], where: Where) -> list[Request] | None:
    if operation in _TASK_TOKEN_CALLS:
        return [Request(f"states:{operation}", "*")]  # a task token names no resource
    return None


def _secretsmanager(operation: str, params: Mapping[str, Any], where: Where) -> list[Request] | None:
    secret = str(params.get("SecretId", ""))
    if not secret:
        return None
    arn = secret if secret.startswith("arn:") else where.arn("secretsmanager", f"secret:{secret}-??????")
    return [Request(f"secretsmanager:{operation}", arn)]


def _events(operation: str, params: Mapping[str, Any], where: Where) -> list[Request] | None:
    if operation != "PutEvents":
        return None
    buses = {str(e.get("EventBusName") or "default") for e in params.get("Entries") or []} or {"default"}
    return [
        Request(
            "events:PutEvents", bus if bus.startswith("arn:") else where.arn("events", f"event-bus/{bus}")
        )
        for bus in sorted(buses)
    ]


def _model_arn(model: str, where: Where) -> str:
    if model.startswith("arn:"):
        return model
    return where.arn("bedrock", f"foundation-model/{model}", account=False)


def _job_arn(job: str, where: Where) -> str:
    return job if job.startswith("arn:") else where.arn("bedrock", f"model-invocation-job/{job}")


def _bedrock(operation: str, params: Mapping[str, Any], where: Where) -> list[Request] | None:
    if operation == "CreateModelInvocationJob":
        return [
            Request("bedrock:CreateModelInvocationJob", _model_arn(str(params.get("modelId", "")), where)),
            Request("bedrock:CreateModelInvocationJob", where.arn("bedrock", "model-invocation-job/*")),
            Request(
                "iam:PassRole",
                str(params.get("roleArn", "")),
                (("iam:PassedToService", "bedrock.amazonaws.com"),),
            ),
        ]
    if operation in ("GetModelInvocationJob", "StopModelInvocationJob"):
        return [Request(f"bedrock:{operation}", _job_arn(str(params.get("jobIdentifier", "")), where))]
    return None


def _lambda(operation: str, params: Mapping[str, Any], where: Where) -> list[Request] | None:
    name = str(params.get("FunctionName", ""))
    if not name:
        return None
    arn = name if name.startswith("arn:") else where.arn("lambda", f"function:{name}")
    action = {"Invoke": "lambda:InvokeFunction", "InvokeWithResponseStream": "lambda:InvokeFunction"}
    return [Request(action.get(operation, f"lambda:{operation}"), arn)]


_SPECIAL: dict[str, Callable[[str, Mapping[str, Any], Where], list[Request] | None]] = {
    "s3": _s3,
    "dynamodb": _dynamodb,
    "states": _states,
    "secretsmanager": _secretsmanager,
    "events": _events,
    "bedrock": _bedrock,
    "lambda": _lambda,
}
