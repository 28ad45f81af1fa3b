"""The process made safe for moto: fake credentials, no profile, no endpoint but moto's.

:func:`offline_environment` sets fake credentials (:data:`FAKE_CREDENTIALS`, which moto accepts; every
boto3 session of the offline stack uses them) and the region, and removes profile, endpoint and
container-credential variables, so no boto3 client can reach a real AWS endpoint.
:func:`share_global_sdk_settings` keeps the template's Globals ``AWS_*`` SDK settings set for the
whole process while handlers swap ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
}

_REMOVED_ENV_PREFIXES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_CONTAINER_CREDENTIALS",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "TEST_SERVER_MODE",
)


def offline_environment(region: str) -> None:
    for key in list(os.environ):
        if key.startswith(_REMOVED_ENV_PREFIXES):
            del os.environ[key]
    os.environ.update(FAKE_CREDENTIALS)
    os.environ.update(
        {
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
    )


def share_global_sdk_settings(template: Mapping[str, Any]) -> None:
    """Keep the SDK settings every function gets (Globals ``AWS_*`` variables) set for the whole process.

    Handlers swap ``os.environ`` per invocation while the Step Functions interpreter's threads create
    boto3 clients: botocore reads a setting as ``if name in os.environ: os.environ[name]``, so a key a
    swap deletes between the two steps failed an execution with ``States.Runtime: 'AWS_RETRY_MODE'``.
    Set once for everyone, such keys are the same before, during and after every invocation.
    """
    globals_env = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    for key, value in globals_env.items():
        if key.startswith("AWS_") and isinstance(value, str):
            os.environ[key] = value
