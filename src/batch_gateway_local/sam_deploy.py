"""Turn a SAM template.yaml into a CloudFormation stack that moto's CloudFormation can create.

Steps, each a plain function so they can be tested on their own:

1. :func:`load_template` reads CloudFormation YAML (short-form ``!Ref``/``!GetAtt``/``!Sub``...
   tags; dates stay strings) or JSON.
2. :func:`package_local_artifacts` does what ``sam package`` does: every *local* ``CodeUri``
   (functions, also from ``Globals``), ``ContentUri`` (layers), ``DefinitionUri`` (state machines,
   APIs) and the plain-CloudFormation equivalents (``Code``, ``Content``, ``DefinitionS3Location``
   given as a path) becomes an ``s3://`` location, and the caller uploads the returned artifacts
   to moto's S3. Function and layer packages are small placeholder zips (moto only stores them;
   the code runs from the local directory, see ``inprocess_lambda``); definition files are
   uploaded as they are.
3. :func:`translate_sam` runs aws-sam-translator offline, with the managed-policy map bundled in
   aws-sam-translator instead of IAM ``ListPolicies`` calls. SAM policy templates
   (S3CrudPolicy, DynamoDBCrudPolicy, LambdaInvokePolicy, StepFunctionsExecutionPolicy, ...) are
   expanded by the translator itself.
4. :class:`CloudFormationExtensions` (a context manager around stack creation) teaches moto's
   CloudFormation the resource types it lacks and records which resource failed, if one does.
5. :func:`s3_bucket_configuration_calls` and :func:`substitute_definition` give what moto's
   CloudFormation leaves out for buckets and state machines (applied by ``offline_stack``).

Resource types moto 5.2.5's CloudFormation cannot create, and what happens to them here:

* ``AWS::SecretsManager::Secret`` - created for real in moto's Secrets Manager (``Name``,
  ``Description``, ``SecretString`` or ``GenerateSecretString``, ``Tags``, ``KmsKeyId``); ``Ref``
  and ``GetAtt Id`` give the ARN, so handlers can read the secret.
* ``AWS::Lambda::Alias`` (SAM ``AutoPublishAlias``) - created for real with Lambda CreateAlias, so
  ``Ref Function.Alias`` resolves to an invocable alias ARN.
* ``AWS::Lambda::LayerVersion`` and ``AWS::Lambda::Version`` - moto creates them, but ``Ref`` to
  them does not give the version ARN (and the layer ignores ``LayerName``); they are created
  through PublishLayerVersion / PublishVersion instead, so ``Ref`` and ``GetAtt Version`` work.
* ``AWS::Lambda::Function`` - moto creates it but drops ``Layers`` (and ``Architectures``,
  ``TracingConfig``, ``DeadLetterConfig``, ``LoggingConfig``...); ``offline_stack`` sets the
  ``Layers`` afterwards with UpdateFunctionConfiguration, the rest stays unset.
* ``AWS::ApiGateway::*`` and ``AWS::ApiGatewayV2::*`` (SAM ``Api``/``HttpApi`` and their events) -
  all skipped as below, also the types moto has models for: moto's CloudFormation ignores the
  OpenAPI ``Body`` SAM generates, so the API's Deployment cannot be created, and moto does not
  serve HTTP through API Gateway anyway (drive the API handler with real-shaped events or a local
  HTTP front).
* every other unsupported type (for a SAM app typically ``AWS::Scheduler::Schedule`` (ScheduleV2),
  ``AWS::CloudWatch::Alarm``, ``AWS::Lambda::EventInvokeConfig``, ``AWS::S3::BucketPolicy``,
  ``AWS::SNS::Subscription``, ``AWS::SQS::QueuePolicy``) - skipped: a placeholder takes its place so
  the stack still creates and references to it resolve to ``offline-skipped-<LogicalId>`` (``Ref``)
  or ``offline-skipped-<LogicalId>.<Attribute>`` (``GetAtt``). Nothing is created for them; the
  stack lists them in ``skipped_resources``. (Without this, moto leaves such a resource out and
  every ``Ref`` to it silently becomes ``None``.)

Types moto creates but does not *run*: ``AWS::Events::Rule`` schedules are stored but never fire
(``offline_stack`` delivers events that match a pattern rule to its Lambda, SQS and Logs targets:
``event_rules.EventRuleDelivery``); API Gateway resources do not serve HTTP; state machines land in moto's non-executing
Step Functions backend without their ``DefinitionSubstitutions`` (``offline_stack`` recreates
them); bucket ``NotificationConfiguration`` and ``VersioningConfiguration`` are ignored
(``offline_stack`` applies them through the S3 API).
"""

from __future__ import annotations

import copy
import importlib
import io
import json
import re
import zipfile
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, cast
from unittest import mock

import boto3

# PyYAML ships no type information (and types-PyYAML is not a dependency): use it as Any.
yaml: Any = importlib.import_module("yaml")

FAKE_ACCESS_KEY_ID = "testing"
FAKE_SECRET_ACCESS_KEY = "testing"  # noqa: S105 - moto accepts any credentials


class OfflineStackError(RuntimeError):
    """The template cannot be deployed or run offline; the message says why."""


# --------------------------------------------------------------------------------------------------
# 1. CloudFormation YAML


_CfnYamlLoader: Any = type("_CfnYamlLoader", (yaml.SafeLoader,), {})
"""SafeLoader that keeps CloudFormation short-form tags and leaves dates as strings."""


def _cfn_tag(loader: Any, tag_suffix: str, node: Any) -> dict[str, Any]:
    name = (
        "Ref" if tag_suffix == "Ref" else ("Condition" if tag_suffix == "Condition" else f"Fn::{tag_suffix}")
    )
    value: Any
    if tag_suffix == "GetAtt" and isinstance(node, yaml.ScalarNode):
        value = str(loader.construct_scalar(node)).split(".", 1)
    elif isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnYamlLoader.add_multi_constructor("!", _cfn_tag)
_CfnYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_template(path: Path) -> dict[str, Any]:
    """Read a CloudFormation/SAM template (YAML with short-form tags, or JSON)."""
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnYamlLoader)
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise OfflineStackError(f"{path} is not a CloudFormation template (no Resources mapping)")
    return cast(dict[str, Any], data)


def is_sam_template(template: Mapping[str, Any]) -> bool:
    transform = template.get("Transform")
    transforms = transform if isinstance(transform, list) else [transform]
    return any(isinstance(t, str) and t.startswith("AWS::Serverless") for t in transforms)


# --------------------------------------------------------------------------------------------------
# 2. Local artifacts -> S3


@dataclass(frozen=True)
class LocalArtifact:
    """A local path of the template and the S3 object that stands for it."""

    logical_id: str
    kind: str  # "function" | "layer" | "definition"
    local_path: Path
    bucket: str
    key: str
    body: bytes

    @property
    def s3_uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


# (resource type, property, artifact kind, form of the rewritten value)
_ARTIFACT_PROPERTIES: tuple[tuple[str, str, str, str], ...] = (
    ("AWS::Serverless::Function", "CodeUri", "function", "uri"),
    ("AWS::Serverless::LayerVersion", "ContentUri", "layer", "uri"),
    ("AWS::Serverless::StateMachine", "DefinitionUri", "definition", "uri"),
    ("AWS::Serverless::Api", "DefinitionUri", "definition", "uri"),
    ("AWS::Serverless::HttpApi", "DefinitionUri", "definition", "uri"),
    ("AWS::Lambda::Function", "Code", "function", "code"),
    ("AWS::Lambda::LayerVersion", "Content", "layer", "code"),
    ("AWS::StepFunctions::StateMachine", "DefinitionS3Location", "definition", "location"),
)


def _placeholder_zip(logical_id: str, local_path: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("OFFLINE_STACK.txt", date_time=(2020, 1, 1, 0, 0, 0))
        archive.writestr(info, f"{logical_id}: code runs in-process from {local_path}\n")
    return buffer.getvalue()


def _is_local(value: Any) -> bool:
    return isinstance(value, str) and not value.startswith("s3://") and "://" not in value


def package_local_artifacts(template: dict[str, Any], base_dir: Path, bucket: str) -> list[LocalArtifact]:
    """Rewrite local code/definition paths in ``template`` (in place) to ``s3://bucket/...``.

    Relative paths are resolved against ``base_dir`` (the template's directory, as in SAM).
    A function without its own ``CodeUri`` inherits the one in ``Globals.Function``. Functions with
    ``InlineCode``, ``ImageUri`` or an S3 ``CodeUri`` are left alone (they cannot run in-process).
    """
    artifacts: list[LocalArtifact] = []
    globals_function = (template.get("Globals") or {}).get("Function") or {}
    global_code_uri = globals_function.get("CodeUri")
    for logical_id, resource in template["Resources"].items():
        if not isinstance(resource, dict):
            continue
        resource_type = resource.get("Type")
        properties = resource.setdefault("Properties", {}) if resource_type else {}
        for rtype, prop, kind, form in _ARTIFACT_PROPERTIES:
            if resource_type != rtype:
                continue
            value = properties.get(prop)
            if (
                value is None
                and prop == "CodeUri"
                and "InlineCode" not in properties
                and "ImageUri" not in properties
                and properties.get("PackageType", globals_function.get("PackageType")) != "Image"
            ):
                value = global_code_uri
            if not _is_local(value):
                continue
            local_path = (base_dir / str(value)).resolve()
            if not local_path.exists():
                raise OfflineStackError(
                    f"{logical_id}.{prop}: {value!r} does not exist (looked at {local_path})"
                )
            if kind == "definition":
                if not local_path.is_file():
                    raise OfflineStackError(f"{logical_id}.{prop}: {local_path} is not a file")
                key = f"{kind}/{logical_id}/{local_path.name}"
                body = local_path.read_bytes()
            else:
                if not local_path.is_dir():
                    raise OfflineStackError(f"{logical_id}.{prop}: {local_path} is not a directory")
                key = f"{kind}/{logical_id}/package.zip"
                body = _placeholder_zip(logical_id, local_path)
            artifact = LocalArtifact(logical_id, kind, local_path, bucket, key, body)
            artifacts.append(artifact)
            if form == "uri":
                properties[prop] = artifact.s3_uri
            elif form == "code":
                properties[prop] = {"S3Bucket": bucket, "S3Key": key}
            else:
                properties[prop] = {"Bucket": bucket, "Key": key}
    if isinstance(global_code_uri, str) and _is_local(global_code_uri):
        del globals_function["CodeUri"]
    return artifacts


# --------------------------------------------------------------------------------------------------
# 3. SAM -> CloudFormation


class _BundledManagedPolicies:
    """ManagedPolicyLoader stand-in: the AWS managed-policy map that ships with aws-sam-translator."""

    def __init__(self, partition: str) -> None:
        self._partition = partition

    def load(self) -> dict[str, str]:
        from samtranslator.internal.managed_policies import get_bundled_managed_policy_map

        return dict(get_bundled_managed_policy_map(self._partition) or {})


def translate_sam(
    template: Mapping[str, Any], parameter_values: Mapping[str, str], region: str
) -> dict[str, Any]:
    """Translate a SAM template to CloudFormation offline (a copy; CloudFormation passes through)."""
    fragment = copy.deepcopy(dict(template))
    if not is_sam_template(fragment):
        return fragment
    from samtranslator.metrics.metrics import DummyMetricsPublisher, Metrics
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import (
        to_py27_compatible_template,
        undo_mark_unicode_str_in_template,
    )

    partition = (
        "aws-cn" if region.startswith("cn-") else ("aws-us-gov" if region.startswith("us-gov-") else "aws")
    )
    values: dict[str, Any] = dict(parameter_values)
    values.setdefault("AWS::Region", region)
    values.setdefault("AWS::Partition", partition)
    session = boto3.session.Session(
        aws_access_key_id=FAKE_ACCESS_KEY_ID, aws_secret_access_key=FAKE_SECRET_ACCESS_KEY, region_name=region
    )
    metrics = Metrics("ServerlessTransform", DummyMetricsPublisher())
    translator = Translator(None, Parser(), boto_session=session, metrics=metrics)
    to_py27_compatible_template(fragment, values)
    try:
        translated = translator.translate(
            fragment, parameter_values=values, get_managed_policy_map=_BundledManagedPolicies(partition).load
        )
    except InvalidDocumentException as exc:
        causes = "\n".join(f"  - {cause.message}" for cause in exc.causes)
        raise OfflineStackError(f"SAM translation failed:\n{causes}") from exc
    finally:
        metrics.publish()  # the dummy publisher drops them; unpublished metrics warn at exit
    translated = undo_mark_unicode_str_in_template(translated)
    return cast(dict[str, Any], translated)


_SUB_VARIABLE = re.compile(r"\$\{([^!}][^}]*)\}")


def _referenced_names(node: Any, out: set[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _referenced_names(item, out)
        return
    if not isinstance(node, dict):
        return
    if len(node) == 1:
        ((key, value),) = node.items()
        if key == "Ref" and isinstance(value, str):
            out.add(value)
            return
        if key == "Fn::GetAtt":
            out.add(str(value[0] if isinstance(value, list) else str(value).split(".", 1)[0]))
            return
        if key == "Fn::Sub":
            text, variables = (
                (value, {}) if isinstance(value, str) else (value[0], value[1] if len(value) > 1 else {})
            )
            _referenced_names(variables, out)
            for match in _SUB_VARIABLE.finditer(str(text)):
                name = match.group(1).split(".", 1)[0]
                if name not in variables:
                    out.add(name)
            return
    for value in node.values():
        _referenced_names(value, out)


def find_dependency_cycle(template: Mapping[str, Any]) -> list[str] | None:
    """A cycle of resources that depend on each other (Ref/GetAtt/Sub/DependsOn), or None.

    moto's CloudFormation recurses forever on one (RecursionError); AWS rejects it as a
    "Circular dependency between resources".
    """
    resources = template.get("Resources") or {}
    graph: dict[str, list[str]] = {}
    for logical_id, resource in resources.items():
        names: set[str] = set()
        _referenced_names(resource.get("Properties") or {}, names)
        depends_on = resource.get("DependsOn") or []
        names |= {depends_on} if isinstance(depends_on, str) else set(depends_on)
        graph[logical_id] = sorted(n for n in names if n in resources)
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in graph:
        if state.get(start):
            continue
        path = [start]
        iterators = [iter(graph[start])]
        state[start] = 1
        while iterators:
            nxt = next(iterators[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                iterators.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                iterators.append(iter(graph[nxt]))
    return None


# --------------------------------------------------------------------------------------------------
# 4. moto CloudFormation extensions


SKIPPED_PREFIX = "offline-skipped-"

SKIPPED_TYPE_PREFIXES = ("AWS::ApiGateway::", "AWS::ApiGatewayV2::")
"""Types replaced by placeholders even where moto has a model: moto's CloudFormation ignores a
RestApi's OpenAPI ``Body`` (so the Deployment SAM generates fails: "The REST API doesn't contain
any methods") and API Gateway does not serve requests in moto anyway."""


class _ExtensionModel:
    """Duck-typed moto CloudFormationModel (not a subclass, so moto's global model list stays as is)."""

    resource_type: ClassVar[str] = ""

    def __init__(self, logical_id: str, resource_type: str, physical_id: str) -> None:
        self.logical_resource_id = logical_id
        self.cf_resource_type = resource_type
        self._physical_id = physical_id

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


def _client(service: str, region_name: str) -> Any:
    # Runs inside moto's request handling; in-process calls nest fine.
    return boto3.session.Session(
        aws_access_key_id=FAKE_ACCESS_KEY_ID,
        aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
        region_name=region_name,
    ).client(service)  # type: ignore[call-overload]


class SkippedResource(_ExtensionModel):
    """Placeholder for a resource type moto's CloudFormation cannot create; nothing is created."""

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> SkippedResource:
        logical_id = str(kwargs.get("LogicalId", resource_name))
        resource_type = str(kwargs.get("ResourceType", cloudformation_json.get("Type", "")))
        return cls(logical_id, resource_type, f"{SKIPPED_PREFIX}{logical_id}")


class SecretResource(_ExtensionModel):
    """AWS::SecretsManager::Secret, created in moto's Secrets Manager."""

    resource_type = "AWS::SecretsManager::Secret"

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> SecretResource:
        props = cloudformation_json.get("Properties") or {}
        client = _client("secretsmanager", region_name)
        secret_string = props.get("SecretString")
        generate = props.get("GenerateSecretString")
        if secret_string is None and isinstance(generate, dict):
            options = {
                k: generate[k]
                for k in (
                    "PasswordLength",
                    "ExcludeCharacters",
                    "ExcludeNumbers",
                    "ExcludePunctuation",
                    "ExcludeUppercase",
                    "ExcludeLowercase",
                    "IncludeSpace",
                    "RequireEachIncludedType",
                )
                if k in generate
            }
            password = client.get_random_password(**options)["RandomPassword"]
            template = generate.get("SecretStringTemplate")
            key = generate.get("GenerateStringKey")
            if template and key:
                document = json.loads(template)
                document[key] = password
                secret_string = json.dumps(document)
            else:
                secret_string = password
        request: dict[str, Any] = {"Name": str(props.get("Name") or resource_name)}
        if secret_string is not None:
            request["SecretString"] = str(secret_string)
        for key in ("Description", "KmsKeyId", "Tags"):
            if props.get(key):
                request[key] = props[key]
        arn = client.create_secret(**request)["ARN"]
        return cls(str(kwargs.get("LogicalId", resource_name)), cls.resource_type, str(arn))

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name == "Id":
            return self._physical_id
        return super().get_cfn_attribute(attribute_name)


class LambdaAliasResource(_ExtensionModel):
    """AWS::Lambda::Alias (SAM AutoPublishAlias), created with Lambda CreateAlias."""

    resource_type = "AWS::Lambda::Alias"

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> LambdaAliasResource:
        props = cloudformation_json.get("Properties") or {}
        request = {
            "FunctionName": str(props["FunctionName"]),
            "Name": str(props["Name"]),
            "FunctionVersion": str(props.get("FunctionVersion", "$LATEST")),
        }
        if props.get("Description"):
            request["Description"] = str(props["Description"])
        arn = _client("lambda", region_name).create_alias(**request)["AliasArn"]
        return cls(str(kwargs.get("LogicalId", resource_name)), cls.resource_type, str(arn))


class LambdaLayerVersionResource(_ExtensionModel):
    """AWS::Lambda::LayerVersion via PublishLayerVersion (moto's own: no ARN for Ref, LayerName ignored)."""

    resource_type = "AWS::Lambda::LayerVersion"

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> LambdaLayerVersionResource:
        props = cloudformation_json.get("Properties") or {}
        request: dict[str, Any] = {
            "LayerName": str(props.get("LayerName") or resource_name),
            "Content": props["Content"],
        }
        for key in ("Description", "CompatibleRuntimes", "CompatibleArchitectures", "LicenseInfo"):
            if props.get(key):
                request[key] = props[key]
        arn = _client("lambda", region_name).publish_layer_version(**request)["LayerVersionArn"]
        return cls(str(kwargs.get("LogicalId", resource_name)), cls.resource_type, str(arn))


class LambdaVersionResource(_ExtensionModel):
    """AWS::Lambda::Version via PublishVersion (moto's own: no ARN for Ref, no GetAtt Version)."""

    resource_type = "AWS::Lambda::Version"

    def __init__(self, logical_id: str, resource_type: str, physical_id: str, version: str) -> None:
        super().__init__(logical_id, resource_type, physical_id)
        self.version = version

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> LambdaVersionResource:
        props = cloudformation_json.get("Properties") or {}
        request = {"FunctionName": str(props["FunctionName"])}
        if props.get("Description"):
            request["Description"] = str(props["Description"])
        published = _client("lambda", region_name).publish_version(**request)
        return cls(
            str(kwargs.get("LogicalId", resource_name)),
            cls.resource_type,
            str(published["FunctionArn"]),
            str(published["Version"]),
        )

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name == "Version":
            return self.version
        return super().get_cfn_attribute(attribute_name)


EXTENSION_MODELS: dict[str, type[_ExtensionModel]] = {
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


# --------------------------------------------------------------------------------------------------
# 5. What moto's CloudFormation leaves out


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


_PLACEHOLDER = re.compile(r"\$\{([^${}\s]+)\}")


def substitution_value(value: Any) -> str:
    """How CloudFormation writes a DefinitionSubstitutions value into the definition."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def substitute_definition(
    definition: str, substitutions: Mapping[str, str], *, where: str = "definition"
) -> str:
    """Replace ``${Key}`` placeholders; a placeholder without a value is an error."""
    missing = sorted({m.group(1) for m in _PLACEHOLDER.finditer(definition)} - set(substitutions))
    if missing:
        raise OfflineStackError(f"{where}: no DefinitionSubstitutions value for {', '.join(missing)}")
    return _PLACEHOLDER.sub(lambda m: substitutions[m.group(1)], definition)
