"""moto's own IAM enforcement, switched on, and kept from denying what AWS would allow.

moto 5 authenticates a request when ``settings.INITIAL_NO_AUTH_ACTION_COUNT`` is reached (0 here:
from the first request after the stack is set up): it finds the access key (an IAM user's, or an
assumed role's with its ``X-Amz-Security-Token``), checks the signature and evaluates the
principal's policies from its IAM backend, action by action. Its evaluation is partial, so, to be a
second check that never refuses what AWS allows (``policy.py`` stays the precise one):

* Resources: moto passes the object or bucket ARN for S3 and ``*`` for every other service; ``*``
  matches no ARN pattern there, so a request on ``*`` is taken to match any ``Resource``.
* Conditions: moto knows ``StringEquals`` only and sees no request context, so it ignores every
  condition: an Allow with a condition allows (broader than AWS), and a Deny with a condition or a
  ``NotResource`` (which it would apply to every request) is skipped here. ``NotAction`` it handles.
* Action names: it checks ``<signing name>:<operation>``, which IAM does not always authorize: the
  action names of ``calls.py`` are used (Invoke is lambda:InvokeFunction, monitoring is
  cloudwatch, a DynamoDB transaction is each item's action), evaluated by moto.
* Inline policies of a role CloudFormation made are kept as dicts, which moto's evaluator cannot
  read (KeyError): they are handed to it as JSON text.
* Signatures: for a GET, HEAD or DELETE without a body (a Lambda GET) moto hashes its parsed
  parameters as the payload, so no signature matches: the empty body is hashed, as botocore did.
* A request without an ``Authorization`` header (a presigned URL, an anonymous GET) is not checked:
  moto would fail on it; the URL's signer's permission is checked when it is used, on AWS.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from html import unescape
from typing import Any
from unittest import mock

from batch_gateway_local.stack.iam.calls import Where, iam_prefix, requests_for

OnDecided = Callable[[str, str, str, bool], None]
"""Told (principal ARN, action, resource, allowed) of each request moto evaluated."""


@contextmanager
def moto_enforcement(where: Where, on_decided: OnDecided) -> Iterator[None]:
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.core.exceptions import AccessDeniedError
    from moto.iam.access_control import IAMPolicy, IAMPolicyStatement, IAMRequestBase, PermissionResult
    from moto.s3.exceptions import BucketAccessDeniedError, S3AccessDeniedError

    denials = (AccessDeniedError, BucketAccessDeniedError, S3AccessDeniedError)
    policy_init = IAMPolicy.__init__

    def read_policy(policy: Any, document: Any) -> None:
        if isinstance(document, dict) and "policy_document" not in document:
            document = json.dumps(document)  # a role's inline policy made by CloudFormation
        policy_init(policy, document)

    authenticate = ActionAuthenticatorMixin._authenticate_and_authorize_action
    permitted = IAMRequestBase.check_action_permitted
    statement_permits = IAMPolicyStatement.is_action_permitted
    matches = IAMPolicyStatement._check_element_matches
    aws_request = IAMRequestBase._create_aws_request

    def _create_aws_request(request: Any) -> Any:
        if not request._body and request._method in ("GET", "HEAD", "DELETE"):
            request._data = b""
        return aws_request(request)

    def _authenticate_and_authorize_action(response: Any, *args: Any, **kwargs: Any) -> None:
        if "Authorization" in (response.headers or {}):
            authenticate(response, *args, **kwargs)

    def check_action_permitted(request: Any, moto_resource: str) -> None:
        for action, resource in _iam_requests(request, moto_resource, where):
            request._action = action
            try:
                permitted(request, resource)
            except denials:
                on_decided(str(request._access_key.arn), action, resource, False)
                raise
            on_decided(str(request._access_key.arn), action, resource, True)

    def is_action_permitted(
        statement: Any, action: str, resource: str = "*", principal: Any = None, *rest: Any
    ) -> Any:
        raw = statement._statement
        if principal is None and raw.get("Effect") == "Deny" and ("Condition" in raw or "NotResource" in raw):
            return PermissionResult.NEUTRAL  # moto cannot evaluate it; policy.py does
        return statement_permits(statement, action, resource, principal, *rest)

    def _check_element_matches(statement: Any, element: Any, value: str) -> bool:
        return (element == "Resource" and value == "*") or bool(matches(statement, element, value))

    with ExitStack() as patches:
        patches.enter_context(mock.patch.object(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0))
        for cls, name, replacement in (
            (
                ActionAuthenticatorMixin,
                "_authenticate_and_authorize_action",
                _authenticate_and_authorize_action,
            ),
            (IAMRequestBase, "check_action_permitted", check_action_permitted),
            (IAMRequestBase, "_create_aws_request", _create_aws_request),
            (IAMPolicy, "__init__", read_policy),
            (IAMPolicyStatement, "is_action_permitted", is_action_permitted),
            (IAMPolicyStatement, "_check_element_matches", _check_element_matches),
        ):
            patches.enter_context(mock.patch.object(cls, name, replacement))
        yield


_S3_VERSIONED = {"s3:GetObject", "s3:DeleteObject", "s3:GetObjectTagging", "s3:PutObjectTagging"}


def _iam_requests(request: Any, resource: str, where: Where) -> list[tuple[str, str]]:
    """(action, resource) IAM authorizes for moto's ``<service>:<operation>`` on ``resource``."""
    service, _, operation = str(request._action).partition(":")
    if service == "s3":
        return _s3_requests(request, resource)
    try:
        params = json.loads(request._body or b"{}")
    except (TypeError, ValueError):
        params = {}
    params = params if isinstance(params, dict) else {}
    prefix = iam_prefix(service)
    actions = [r.action for r in requests_for(prefix, operation, params, where)]
    if prefix == "lambda" and operation in ("Invoke", "InvokeWithResponseStream"):
        actions = ["lambda:InvokeFunction"]
    return [(a, resource) for a in dict.fromkeys(actions or [f"{prefix}:{operation}"])]


def _s3_requests(request: Any, resource: str) -> list[tuple[str, str]]:
    """S3's names are IAM's but for a version id (a HEAD of a version is s3:GetObjectVersion),
    HeadBucket (s3:ListBucket) and DeleteObjects (s3:DeleteObject of each key, not of the bucket)."""
    action = str(request._action)
    query = str(request._path).partition("?")[2]
    if action == "s3:DeleteObject" and "/" not in resource.split(":::", 1)[-1] and "delete" in query:
        keys = [
            unescape(k.decode()) for k in re.findall(rb"<Key>(.*?)</Key>", request._body or b"", re.DOTALL)
        ]
        return [(action, f"{resource}/{key}") for key in keys]
    if action in _S3_VERSIONED and "versionId=" in query:
        return [(action + "Version", resource)]
    return [("s3:ListBucket" if action == "s3:HeadBucket" else action, resource)]
