"""Lambda resource kinds moto's CloudFormation gets wrong, created through the Lambda API instead.

* ``AWS::Lambda::Alias`` (SAM ``AutoPublishAlias``): moto cannot create it; CreateAlias here, so
  ``Ref Function.Alias`` resolves to an invocable alias ARN.
* ``AWS::Lambda::LayerVersion`` and ``AWS::Lambda::Version``: moto creates them, but ``Ref`` does not
  give the version ARN (and the layer ignores ``LayerName``); PublishLayerVersion / PublishVersion
  here, so ``Ref`` and ``GetAtt Version`` work.
* ``AWS::Lambda::Function``: moto creates it but drops ``Layers``; :func:`attach_layers` sets them
  afterwards with UpdateFunctionConfiguration (``Architectures``, ``TracingConfig`` ... stay unset).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from batch_gateway_local.stack.errors import OfflineStackError
from batch_gateway_local.stack.sam.resources import Created, CreateRequest, ExtensionResource


class LambdaAliasResource(ExtensionResource):
    """AWS::Lambda::Alias (SAM AutoPublishAlias), created with Lambda CreateAlias."""

    resource_type = "AWS::Lambda::Alias"

    @classmethod
    def create(cls, request: CreateRequest) -> Created:
        props = request.properties
        call = {
            "FunctionName": str(props["FunctionName"]),
            "Name": str(props["Name"]),
            "FunctionVersion": str(props.get("FunctionVersion", "$LATEST")),
            **{k: str(v) for k, v in request.present("Description").items()},
        }
        return Created(str(request.client("lambda").create_alias(**call)["AliasArn"]))


class LambdaLayerVersionResource(ExtensionResource):
    """AWS::Lambda::LayerVersion via PublishLayerVersion (moto's own: no ARN for Ref, LayerName ignored)."""

    resource_type = "AWS::Lambda::LayerVersion"

    @classmethod
    def create(cls, request: CreateRequest) -> Created:
        props = request.properties
        call: dict[str, Any] = {
            "LayerName": str(props.get("LayerName") or request.resource_name),
            "Content": props["Content"],
            **request.present("Description", "CompatibleRuntimes", "CompatibleArchitectures", "LicenseInfo"),
        }
        return Created(str(request.client("lambda").publish_layer_version(**call)["LayerVersionArn"]))


class LambdaVersionResource(ExtensionResource):
    """AWS::Lambda::Version via PublishVersion (moto's own: no ARN for Ref, no GetAtt Version)."""

    resource_type = "AWS::Lambda::Version"

    @classmethod
    def create(cls, request: CreateRequest) -> Created:
        call = {
            "FunctionName": str(request.properties["FunctionName"]),
            **{k: str(v) for k, v in request.present("Description").items()},
        }
        published = request.client("lambda").publish_version(**call)
        return Created(str(published["FunctionArn"]), {"Version": str(published["Version"])})


def attach_layers(lam: Any, functions: Iterable[tuple[str, str, Sequence[Any]]]) -> None:
    """Set each function's ``Layers`` (logical id, function name, resolved layer ARNs) through the API."""
    for logical_id, function_name, layers in functions:
        arns = [str(arn) for arn in layers]
        try:
            lam.update_function_configuration(FunctionName=function_name, Layers=arns)
        except Exception as exc:
            raise OfflineStackError(f"{logical_id}: setting Layers {arns} failed: {exc}") from exc
