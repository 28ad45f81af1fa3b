"""Teach moto's CloudFormation the resource kinds it lacks, for as long as a stack is being created.

:class:`CloudFormationExtensions` patches two functions of ``moto.cloudformation.parsing``: the one that
picks a model class for a resource type (our kinds first: secrets, Lambda aliases, layer versions and
versions; API Gateway types and every type moto has no model for become :class:`SkippedResource`
placeholders, so ``Ref`` to them resolves instead of silently becoming ``None``), and the one that
creates a resource, to record which resource failed and why (innermost first).
:func:`unsupported_resource_types` lists what moto could not create on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any
from unittest import mock

from batch_gateway_local.stack.sam.lambda_resources import (
    LambdaAliasResource,
    LambdaLayerVersionResource,
    LambdaVersionResource,
)
from batch_gateway_local.stack.sam.resources import SKIPPED_TYPE_PREFIXES, ExtensionResource, SkippedResource
from batch_gateway_local.stack.sam.secrets import SecretResource

EXTENSION_MODELS: dict[str, type[ExtensionResource]] = {
    model.resource_type: model
    for model in (SecretResource, LambdaAliasResource, LambdaLayerVersionResource, LambdaVersionResource)
}


@dataclass(frozen=True)
class ResourceFailure:
    logical_id: str
    resource_type: str
    error: str


class CloudFormationExtensions:
    """Patches moto's CloudFormation parser while active (see the module docstring).

    ``failures`` collects each resource whose creation raised, innermost first (moto creates a
    resource's dependencies while creating it, so the first entry is the cause).
    """

    def __init__(self) -> None:
        self.failures: list[ResourceFailure] = []
        self._stack = ExitStack()

    def __enter__(self) -> CloudFormationExtensions:
        from moto.cloudformation import parsing

        original_class_from_type = parsing.resource_class_from_type
        original_create = parsing.parse_and_create_resource
        failures = self.failures

        def resource_class_from_type(resource_type: str) -> Any:
            if resource_type in EXTENSION_MODELS:
                return EXTENSION_MODELS[resource_type]
            if resource_type.startswith(SKIPPED_TYPE_PREFIXES):
                return SkippedResource
            if (
                resource_type in parsing.NULL_MODELS
                or resource_type.startswith("Custom::")
                or resource_type in parsing.get_model_map()
            ):
                return original_class_from_type(resource_type)
            return SkippedResource

        def parse_and_create_resource(
            logical_id: str,
            resource_json: dict[str, Any],
            resources_map: Any,
            account_id: str,
            region_name: str,
        ) -> Any:
            try:
                return original_create(logical_id, resource_json, resources_map, account_id, region_name)
            except Exception as exc:
                failures.append(
                    ResourceFailure(
                        logical_id, str(resource_json.get("Type")), f"{type(exc).__name__}: {exc}"
                    )
                )
                raise

        self._stack.enter_context(
            mock.patch.object(parsing, "resource_class_from_type", resource_class_from_type)
        )
        self._stack.enter_context(
            mock.patch.object(parsing, "parse_and_create_resource", parse_and_create_resource)
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


def unsupported_resource_types(template: Mapping[str, Any]) -> dict[str, str]:
    """Logical id -> type for the resources of a CloudFormation template moto cannot create itself."""
    from moto.cloudformation import parsing

    known = parsing.get_model_map()
    result: dict[str, str] = {}
    for logical_id, resource in (template.get("Resources") or {}).items():
        resource_type = str(resource.get("Type", ""))
        if (
            resource_type in known
            or resource_type in parsing.NULL_MODELS
            or resource_type.startswith("Custom::")
        ):
            continue
        result[logical_id] = resource_type
    return result
