"""Every request is signed with its principal's own credentials: a function's, a role's, or the admin's.

At stack start (before moto enforces anything) an IAM user ``offline-stack-admin`` with ``*`` on
``*`` is made, and each principal's role is assumed through moto STS (``sts:AssumeRole`` on the
role the deployed template made; session name: the function's name). Then every request botocore
signs gets the credentials of the principal making it (``recorder.calling_principal``: the function
running in the thread, the role the emulator's Bedrock or moto's interpreter acts for) and the
admin's for everything else (the test, the stack's own setup, the emulator's own reads). moto then
authenticates the key and evaluates the role's policies as its IAM backend holds them.

A wrapper of our own, because credentials cannot be fixed per client: the layer's clients are cached
at module level and shared by every function, which run at once in threads; botocore's
``RequestSigner.get_auth_instance`` already takes per-request ``request_credentials``, and no
event handler reaches clients made before the stack started, so the wrapper supplies them per call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import botocore.signers
from botocore.credentials import Credentials

from batch_gateway_local.stack.iam.recorder import calling_principal
from batch_gateway_local.stack.iam.roles import FunctionPolicy

ADMIN_USER = "offline-stack-admin"
_EVERYTHING = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


@dataclass
class Identities:
    admin: Credentials
    roles: dict[str, Credentials] = field(default_factory=dict)
    """principal (function name or role ARN) -> its role's assumed credentials."""

    def for_principal(self, principal: str | None) -> Credentials:
        return self.roles.get(principal, self.admin) if principal else self.admin


def create_identities(session: Any, principals: Mapping[str, FunctionPolicy], role_arn: str) -> Identities:
    """The admin user's key, and each principal's assumed role (moto must not enforce yet)."""
    iam = session.client("iam")
    iam.create_user(UserName=ADMIN_USER)
    iam.put_user_policy(UserName=ADMIN_USER, PolicyName="everything", PolicyDocument=json.dumps(_EVERYTHING))
    key = iam.create_access_key(UserName=ADMIN_USER)["AccessKey"]
    identities = Identities(Credentials(key["AccessKeyId"], key["SecretAccessKey"]))
    sts = session.client("sts")
    for principal, policy in principals.items():
        if not policy.known:
            continue  # a role outside the template: signed as the admin, as it is not checked either
        session_name = re.sub(r"[^\w+=,.@-]", "-", policy.function_name)[:64]
        found = sts.assume_role(RoleArn=role_arn + policy.role_name, RoleSessionName=session_name)
        c = found["Credentials"]
        identities.roles[principal] = Credentials(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    return identities


@contextmanager
def sign_as_principals(identities: Identities) -> Iterator[None]:
    """While inside, botocore signs each request with the credentials of the principal making it."""
    original: Any = botocore.signers.RequestSigner.get_auth_instance

    def get_auth_instance(signer: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("request_credentials") is None:
            kwargs["request_credentials"] = identities.for_principal(calling_principal())
        return original(signer, *args, **kwargs)

    with mock.patch.object(botocore.signers.RequestSigner, "get_auth_instance", get_auth_instance):
        yield
