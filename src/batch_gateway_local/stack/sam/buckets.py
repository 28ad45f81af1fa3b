"""S3 bucket settings moto's CloudFormation ignores, as the S3 API calls that apply them.

moto creates an ``AWS::S3::Bucket`` but drops its ``NotificationConfiguration`` (so an upload would
not invoke the intake function), ``VersioningConfiguration`` and ``LifecycleConfiguration``.
:func:`s3_bucket_configuration_calls` turns the (resolved) CloudFormation properties into
PutBucketVersioning / PutBucketNotificationConfiguration / PutBucketLifecycleConfiguration calls,
which the offline stack makes once the stack exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _filter_to_api(cfn_filter: Any) -> dict[str, Any] | None:
    if not isinstance(cfn_filter, dict):
        return None
    rules = ((cfn_filter.get("S3Key") or {}).get("Rules")) or []
    if not rules:
        return None
    # S3 treats rule names case-insensitively; moto only matches the lower-case names.
    return {
        "Key": {"FilterRules": [{"Name": str(r["Name"]).lower(), "Value": str(r["Value"])} for r in rules]}
    }


def notification_configuration_to_api(cfn: Mapping[str, Any]) -> dict[str, Any]:
    """CloudFormation ``NotificationConfiguration`` -> S3 PutBucketNotificationConfiguration shape."""
    api: dict[str, Any] = {}
    for cfn_key, api_key, target_key, arn_key in (
        ("LambdaConfigurations", "LambdaFunctionConfigurations", "Function", "LambdaFunctionArn"),
        ("QueueConfigurations", "QueueConfigurations", "Queue", "QueueArn"),
        ("TopicConfigurations", "TopicConfigurations", "Topic", "TopicArn"),
    ):
        entries = []
        for entry in cfn.get(cfn_key) or []:
            item: dict[str, Any] = {arn_key: str(entry[target_key]), "Events": [str(entry["Event"])]}
            api_filter = _filter_to_api(entry.get("Filter"))
            if api_filter:
                item["Filter"] = api_filter
            entries.append(item)
        if entries:
            api[api_key] = entries
    event_bridge = cfn.get("EventBridgeConfiguration")
    if (
        isinstance(event_bridge, dict)
        and str(event_bridge.get("EventBridgeEnabled", "true")).lower() == "true"
    ):
        api["EventBridgeConfiguration"] = {}
    return api


def lifecycle_rule_to_api(rule: Mapping[str, Any]) -> dict[str, Any]:
    """One CloudFormation ``LifecycleConfiguration`` rule in the S3 API's shape (the subset we use)."""
    api: dict[str, Any] = {"Status": str(rule["Status"]), "Filter": {"Prefix": str(rule.get("Prefix", ""))}}
    if rule.get("Id"):
        api["ID"] = str(rule["Id"])
    expiration: dict[str, Any] = {}
    if rule.get("ExpirationInDays") is not None:
        expiration["Days"] = int(rule["ExpirationInDays"])
    if rule.get("ExpiredObjectDeleteMarker") is not None:
        expiration["ExpiredObjectDeleteMarker"] = str(rule["ExpiredObjectDeleteMarker"]).lower() == "true"
    if expiration:
        api["Expiration"] = expiration
    noncurrent = rule.get("NoncurrentVersionExpiration")
    if isinstance(noncurrent, dict) and noncurrent.get("NoncurrentDays") is not None:
        api["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(noncurrent["NoncurrentDays"])}
    abort = rule.get("AbortIncompleteMultipartUpload")
    if isinstance(abort, dict) and abort.get("DaysAfterInitiation") is not None:
        api["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(abort["DaysAfterInitiation"])}
    return api


def s3_bucket_configuration_calls(properties: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """S3 API calls (operation name, kwargs without Bucket) that apply what moto's CFN ignores."""
    calls: list[tuple[str, dict[str, Any]]] = []
    versioning = properties.get("VersioningConfiguration")
    if isinstance(versioning, dict) and versioning.get("Status"):
        calls.append(
            ("put_bucket_versioning", {"VersioningConfiguration": {"Status": str(versioning["Status"])}})
        )
    notification = properties.get("NotificationConfiguration")
    if isinstance(notification, dict):
        api = notification_configuration_to_api(notification)
        if api:
            calls.append(("put_bucket_notification_configuration", {"NotificationConfiguration": api}))
    lifecycle = properties.get("LifecycleConfiguration")
    if isinstance(lifecycle, dict) and lifecycle.get("Rules"):
        rules = [lifecycle_rule_to_api(rule) for rule in lifecycle["Rules"]]
        calls.append(("put_bucket_lifecycle_configuration", {"LifecycleConfiguration": {"Rules": rules}}))
    return calls
