"""``AWS::SecretsManager::Secret``, which moto's CloudFormation cannot create: made in moto's Secrets Manager.

``Name``, ``Description``, ``SecretString`` or ``GenerateSecretString`` (with ``SecretStringTemplate``
and ``GenerateStringKey``), ``Tags`` and ``KmsKeyId`` are honoured; ``Ref`` and ``GetAtt Id`` give the
ARN, so handlers can read the secret as on AWS.
"""

from __future__ import annotations

import json
from typing import Any

from batch_gateway_local.stack.sam.resources import Created, CreateRequest, ExtensionResource

_PASSWORD_OPTIONS = (
    "PasswordLength",
    "ExcludeCharacters",
    "ExcludeNumbers",
    "ExcludePunctuation",
    "ExcludeUppercase",
    "ExcludeLowercase",
    "IncludeSpace",
    "RequireEachIncludedType",
)


def _generated_secret(client: Any, generate: dict[str, Any]) -> str:
    options = {k: generate[k] for k in _PASSWORD_OPTIONS if k in generate}
    password = str(client.get_random_password(**options)["RandomPassword"])
    template = generate.get("SecretStringTemplate")
    key = generate.get("GenerateStringKey")
    if not (template and key):
        return password
    document = json.loads(template)
    document[key] = password
    return json.dumps(document)


class SecretResource(ExtensionResource):
    """AWS::SecretsManager::Secret, created in moto's Secrets Manager."""

    resource_type = "AWS::SecretsManager::Secret"

    @classmethod
    def create(cls, request: CreateRequest) -> Created:
        props = request.properties
        client = request.client("secretsmanager")
        secret_string = props.get("SecretString")
        generate = props.get("GenerateSecretString")
        if secret_string is None and isinstance(generate, dict):
            secret_string = _generated_secret(client, generate)
        call: dict[str, Any] = {"Name": str(props.get("Name") or request.resource_name)}
        if secret_string is not None:
            call["SecretString"] = str(secret_string)
        call.update(request.present("Description", "KmsKeyId", "Tags"))
        arn = str(client.create_secret(**call)["ARN"])
        return Created(arn, {"Id": arn})
