"""The base of every resource kind the offline stack teaches moto's CloudFormation, and the placeholder.

moto's CloudFormation calls ``create_from_cloudformation_json(resource_name, cloudformation_json,
account_id, region_name, **kwargs)`` on a model class. :class:`ExtensionResource` takes that call once
for all kinds, hands each kind a :class:`CreateRequest` (logical id, type, properties, region, a boto3
client factory bound to the mock) and keeps what the kind returns: the physical id (``Ref``) and the
attributes ``GetAtt`` gives. :class:`SkippedResource` stands in for a type moto cannot create: nothing
is created and references to it resolve to ``offline-skipped-<LogicalId>``.

The classes are duck-typed, not subclasses of moto's ``CloudFormationModel``, so moto's global model
list stays as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import boto3

from batch_gateway_local.stack.sandbox import FAKE_CREDENTIALS

SKIPPED_PREFIX = "offline-skipped-"

SKIPPED_TYPE_PREFIXES = ("AWS::ApiGateway::", "AWS::ApiGatewayV2::")
"""Types replaced by placeholders even where moto has a model: moto's CloudFormation ignores a
RestApi's OpenAPI ``Body`` (so the Deployment SAM generates fails: "The REST API doesn't contain
any methods") and API Gateway does not serve requests in moto anyway."""


@dataclass(frozen=True)
class CreateRequest:
    """One resource moto's CloudFormation asks a kind to create."""

    logical_id: str
    resource_name: str  # the name moto suggests (the logical id, unless a name is set)
    resource_type: str
    properties: Mapping[str, Any]
    region_name: str

    def client(self, service: str) -> Any:
        # Runs inside moto's request handling; in-process calls nest fine.
        return boto3.session.Session(
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=self.region_name,
        ).client(service)  # type: ignore[call-overload]

    def present(self, *keys: str) -> dict[str, Any]:
        """The given optional properties that are set (and not empty), under the same names."""
        return {key: self.properties[key] for key in keys if self.properties.get(key)}


@dataclass(frozen=True)
class Created:
    physical_id: str
    attributes: Mapping[str, str] | None = None  # GetAtt name -> value, beyond the default


class ExtensionResource:
    """Duck-typed moto CloudFormationModel; a kind sets ``resource_type`` and implements :meth:`create`."""

    resource_type: ClassVar[str] = ""

    def __init__(
        self,
        logical_id: str,
        resource_type: str,
        physical_id: str,
        attributes: Mapping[str, str] | None = None,
    ) -> None:
        self.logical_resource_id = logical_id
        self.cf_resource_type = resource_type
        self._physical_id = physical_id
        self._attributes = dict(attributes or {})

    @classmethod
    def create(cls, request: CreateRequest) -> Created:
        raise NotImplementedError

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> ExtensionResource:
        request = CreateRequest(
            logical_id=str(kwargs.get("LogicalId", resource_name)),
            resource_name=resource_name,
            resource_type=cls.resource_type
            or str(kwargs.get("ResourceType", cloudformation_json.get("Type", ""))),
            properties=cloudformation_json.get("Properties") or {},
            region_name=region_name,
        )
        created = cls.create(request)
        return cls(request.logical_id, request.resource_type, created.physical_id, created.attributes)

    @property
    def physical_resource_id(self) -> str:
        return self._physical_id

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.resource_type

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return True

    def is_created(self) -> bool:
        return True

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name in self._attributes:
            return self._attributes[attribute_name]
        return f"{self._physical_id}.{attribute_name}"

    def delete(self, account_id: str, region_name: str) -> None:
        return None

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        return None

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> Any:
        return original_resource


class SkippedResource(ExtensionResource):
    """Placeholder for a resource type moto's CloudFormation cannot create; nothing is created."""

    @classmethod
    def create(cls, request: CreateRequest) -> Created:
        return Created(f"{SKIPPED_PREFIX}{request.logical_id}")
