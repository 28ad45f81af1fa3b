"""Local code and definition files of a template -> objects in moto's S3, as ``sam package`` does.

Every *local* ``CodeUri`` (functions, also from ``Globals``), ``ContentUri`` (layers),
``DefinitionUri`` (state machines, APIs) and the plain-CloudFormation equivalents (``Code``,
``Content``, ``DefinitionS3Location`` given as a path) becomes an ``s3://`` location; the caller
uploads the returned :class:`LocalArtifact` objects. Function and layer packages are small placeholder
zips (moto only stores them; the code runs from the local directory, see ``stack.lambda_runtime``);
definition files are uploaded as they are.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batch_gateway_local.stack.errors import OfflineStackError


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
    for logical_id, resource in template["Resources"].items():
        if not isinstance(resource, dict):
            continue
        resource_type = resource.get("Type")
        properties = resource.setdefault("Properties", {}) if resource_type else {}
        for rtype, prop, kind, form in _ARTIFACT_PROPERTIES:
            if resource_type != rtype:
                continue
            value = _local_value(properties, prop, globals_function)
            if value is None:
                continue
            artifact = _artifact(f"{logical_id}.{prop}", kind, value, base_dir, bucket)
            artifacts.append(artifact)
            if form == "uri":
                properties[prop] = artifact.s3_uri
            elif form == "code":
                properties[prop] = {"S3Bucket": bucket, "S3Key": artifact.key}
            else:
                properties[prop] = {"Bucket": bucket, "Key": artifact.key}
    global_code_uri = globals_function.get("CodeUri")
    if isinstance(global_code_uri, str) and _is_local(global_code_uri):
        del globals_function["CodeUri"]
    return artifacts


def _local_value(properties: dict[str, Any], prop: str, globals_function: dict[str, Any]) -> str | None:
    """The property's local path (a function's may come from Globals), or None when it is not local."""
    value = properties.get(prop)
    if (
        value is None
        and prop == "CodeUri"
        and "InlineCode" not in properties
        and "ImageUri" not in properties
        and properties.get("PackageType", globals_function.get("PackageType")) != "Image"
    ):
        value = globals_function.get("CodeUri")
    return str(value) if _is_local(value) else None


def _artifact(where: str, kind: str, value: str, base_dir: Path, bucket: str) -> LocalArtifact:
    """The S3 object for one local path (``where`` is ``LogicalId.Property``): a definition file as
    it is, code as a placeholder zip."""
    logical_id = where.split(".", 1)[0]
    local_path = (base_dir / value).resolve()
    if not local_path.exists():
        raise OfflineStackError(f"{where}: {value!r} does not exist (looked at {local_path})")
    if kind == "definition":
        if not local_path.is_file():
            raise OfflineStackError(f"{where}: {local_path} is not a file")
        return LocalArtifact(
            logical_id,
            kind,
            local_path,
            bucket,
            f"{kind}/{logical_id}/{local_path.name}",
            local_path.read_bytes(),
        )
    if not local_path.is_dir():
        raise OfflineStackError(f"{where}: {local_path} is not a directory")
    body = _placeholder_zip(logical_id, local_path)
    return LocalArtifact(logical_id, kind, local_path, bucket, f"{kind}/{logical_id}/package.zip", body)
