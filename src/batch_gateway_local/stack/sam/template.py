"""Read a SAM template and turn it into the CloudFormation document moto's CloudFormation creates.

:func:`load_template` reads CloudFormation YAML (short-form ``!Ref``/``!GetAtt``/``!Sub`` tags kept,
dates left as strings) or JSON. :func:`translate_sam` runs aws-sam-translator offline, with the
managed-policy map bundled in aws-sam-translator instead of IAM ``ListPolicies`` calls; SAM policy
templates are expanded by the translator itself. :func:`find_dependency_cycle` catches a template
moto would recurse on forever.

The other steps, one module per resource kind, are next to this one (``artifacts``, ``lambda_resources``,
``secrets``, ``buckets``, ``state_machines``); docs/offline-stack.md says what moto lacks and why.
"""

from __future__ import annotations

import copy
import importlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import boto3

from batch_gateway_local.stack.errors import OfflineStackError
from batch_gateway_local.stack.sandbox import FAKE_CREDENTIALS

yaml: Any = importlib.import_module("yaml")


# -- CloudFormation YAML ---------------------------------------------------------------------------


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


# -- SAM -> CloudFormation -------------------------------------------------------------------------


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
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=region,
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
