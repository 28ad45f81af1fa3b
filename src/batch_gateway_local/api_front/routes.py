"""What the local API front reads from template.yaml's ``AWS::Serverless::Api``: stage, routes, refusals.

:class:`ApiDefinition` is built from the same OpenAPI ``DefinitionBody`` AWS deploys: each path and
method becomes a :class:`Route` (its path parameters, whether its security is ``[]``, the function
its integration URI names), and the template's gateway responses give the status, headers and body
of each refusal (403 ``Missing Authentication Token``, 429, 413, 502), as API Gateway answers them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batch_gateway_local.stack.sam.template import load_template

# What API Gateway says for each refusal ($context.error.messageString).
GATEWAY_MESSAGES = {
    "MISSING_AUTHENTICATION_TOKEN": (403, "Missing Authentication Token"),
    "INCOMPLETE_SIGNATURE": (
        403,
        "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters.",
    ),
    "INVALID_API_KEY": (403, "Forbidden"),
    "THROTTLED": (429, "Too Many Requests"),
    "REQUEST_TOO_LARGE": (413, "Request Too Long"),
    "DEFAULT_5XX": (502, "Internal server error"),
}


@dataclass(frozen=True)
class Route:
    resource: str  # e.g. /batches/{job_id}
    methods: frozenset[str]
    pattern: re.Pattern[str]
    # Methods whose security is [] (e.g. POST /webhooks/openai: the webhook signature is the auth).
    open_methods: frozenset[str] = frozenset()
    # Method -> logical id of the function its integration URI names (${WebhookFunction.Arn}).
    functions: tuple[tuple[str, str], ...] = ()

    def function_for(self, method: str) -> str | None:
        return dict(self.functions).get(method)


_INTEGRATION_FUNCTION = re.compile(r"\$\{([A-Za-z0-9]+)\.Arn\}")


def _integration_function(operation: Mapping[str, Any]) -> str | None:
    uri = (operation.get("x-amazon-apigateway-integration") or {}).get("uri")
    text = json.dumps(uri)  # a !Sub string or [string, variables]
    found = _INTEGRATION_FUNCTION.search(text)
    return found.group(1) if found else None


@dataclass(frozen=True)
class ApiDefinition:
    """What the front needs from the template's API: stage, routes, gateway responses."""

    stage: str
    routes: tuple[Route, ...]
    gateway_responses: Mapping[str, Mapping[str, Any]]

    @classmethod
    def from_template(cls, template_path: Path, logical_id: str | None = None) -> ApiDefinition:
        template = load_template(template_path)
        apis = {
            name: resource
            for name, resource in template["Resources"].items()
            if resource.get("Type") == "AWS::Serverless::Api"
        }
        if not apis:
            raise ValueError(f"{template_path} defines no AWS::Serverless::Api")
        api = apis[logical_id] if logical_id else next(iter(apis.values()))
        properties = api["Properties"]
        body = properties["DefinitionBody"]
        routes = []
        for resource, operations in body.get("paths", {}).items():
            regex = re.sub(r"\\\{([A-Za-z_][A-Za-z0-9_]*)\\\}", r"(?P<\1>[^/]+)", re.escape(resource))
            open_methods = frozenset(m.upper() for m, op in operations.items() if op.get("security") == [])
            functions = tuple(
                (m.upper(), name) for m, op in operations.items() if (name := _integration_function(op))
            )
            routes.append(
                Route(
                    resource,
                    frozenset(m.upper() for m in operations),
                    re.compile(f"^{regex}$"),
                    open_methods,
                    functions,
                )
            )
        return cls(
            stage=str(properties["StageName"]),
            routes=tuple(routes),
            gateway_responses=body.get("x-amazon-apigateway-gateway-responses", {}),
        )

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            found = route.pattern.match(path)
            if found and method in route.methods:
                return route, found.groupdict()
        return None

    def gateway_response(self, kind: str, message: str | None = None) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body API Gateway answers for a refusal of this kind."""
        status, default_message = GATEWAY_MESSAGES.get(kind, (500, "Internal server error"))
        spec = self.gateway_responses.get(kind) or self.gateway_responses.get(
            "DEFAULT_5XX" if status >= 500 else "DEFAULT_4XX", {}
        )
        status = int(spec.get("statusCode", status))
        template = (spec.get("responseTemplates") or {}).get("application/json")
        text = json.dumps(message or default_message)
        body = (
            template.replace("$context.error.messageString", text) if template else '{"message":' + text + "}"
        )
        headers = {"Content-Type": "application/json"}
        for name, value in (spec.get("responseParameters") or {}).items():
            if name.startswith("gatewayresponse.header."):
                headers[name.removeprefix("gatewayresponse.header.")] = str(value).strip("'")
        return status, headers, body.encode()
