"""Deploy a SAM template.yaml into moto, in this process, and run its Lambda handlers here.

``OfflineStack`` is a context manager. Entering it:

1. sets fake AWS credentials and the region in ``os.environ`` (and removes profile, endpoint and
   container-credential variables) so no boto3 client can reach a real endpoint, then starts
   ``moto.mock_aws`` with Step Functions execution switched on (moto's copy of the LocalStack ASL
   interpreter);
2. packages every local ``CodeUri``/``ContentUri``/``DefinitionUri`` as an object in a moto
   artifacts bucket (what ``sam package`` does), translates the template with aws-sam-translator
   (offline managed-policy map), and creates the CloudFormation stack in moto with the parameter
   overrides (see ``sam_deploy`` for the resource types moto's CloudFormation cannot create and
   what is done about each);
3. applies what moto's CloudFormation ignores: each bucket's ``NotificationConfiguration`` (so an
   upload invokes the function in-process, through moto's own S3 -> Lambda path) and
   ``VersioningConfiguration``, both taken from the translated template and resolved against the
   deployed stack;
4. recreates every ``AWS::StepFunctions::StateMachine`` in moto's *executing* Step Functions
   backend under the same name, hence the same ARN that environment variables and outputs already
   hold, from the real definition (the ASL file) with ``DefinitionSubstitutions`` resolved from the
   stack (Refs, GetAtts, Subs of resources and parameters) and then ``definition_substitution_overrides``
   applied - use those to make ``Wait`` states short, because the interpreter sleeps for real;
5. installs ``inprocess_lambda.InProcessLambdaRuntime`` in place of moto's Docker-based Lambda
   execution, for the Invoke API, Step Functions tasks and S3 notifications alike.

Leaving it stops running executions, waits (``shutdown_timeout``) for the interpreter's threads,
removes the Lambda patch and moto's mock, and restores ``os.environ``. Do not nest an
``OfflineStack`` inside another ``mock_aws``; two stacks one after the other are fine.

Step Functions, as checked with moto 5.2.5 against the toy stack in tests/fixtures/toy_stack:
Task with ``arn:aws:states:::lambda:invoke`` (``Parameters.FunctionName`` + ``Payload``/``Payload.$``,
result under ``Payload``) and with a plain function ARN as ``Resource`` (result is the handler's
return value), ``arn:aws:states:::dynamodb:updateItem``, Map (``ItemsPath``, ``ItemSelector``,
``ItemProcessor`` INLINE, ``MaxConcurrency``), Wait with ``SecondsPath``, Choice loops, Pass,
Fail, ``ResultSelector``/``ResultPath``/``OutputPath``, Retry (on the handler's exception class
name; sleeps ``IntervalSeconds`` for real) and Catch (``States.ALL``, error and cause of the
Lambda error payload) all run. Probed once by hand (not in the tests): Parallel, legacy Map
``Iterator``/``Parameters``, distributed Map with an S3 ``ItemReader``, intrinsic functions
(``States.Format``, ``States.StringToJson``, ``States.ArrayPartition``, ``States.UUID``) and Wait
``TimestampPath`` work; ``QueryLanguage: JSONata`` fails (``States.Runtime``: moto carries no
JSONata evaluator), ``arn:aws:states:::aws-sdk:s3:getObject`` fails on the streaming body, and
``arn:aws:states:::states:startExecution.sync:2`` fails with ``States.Runtime``.

Pitfalls:

* S3 notifications are delivered synchronously: ``put_object`` returns after the triggered
  handler has finished, and moto swallows that handler's failure - look at
  :meth:`OfflineStack.failed_invocations` / :meth:`OfflineStack.function_logs`.
* Executions run in background threads: poll with :meth:`OfflineStack.wait_for_execution`.
  ``Wait`` and ``Retry`` sleep for real (``IntervalSeconds`` cannot go below 1), so shorten waits
  with ``definition_substitution_overrides``, not by editing the ASL.
* Handlers run one at a time (see ``inprocess_lambda``): a Map state's iterations are serialized,
  and while a handler runs, ``os.environ`` of the whole process is that handler's environment.
  Do not read or change ``os.environ`` in the test while an execution is running.
* S3 event records get the fields moto leaves out and S3's key encoding
  (:func:`complete_s3_event`); handlers must still ``unquote_plus`` the key, as on AWS.
"""

from __future__ import annotations

import copy
import inspect
import itertools
import json
import logging
import os
import threading
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, cast
from unittest import mock
from urllib.parse import quote_plus, unquote_plus

import boto3

from batch_gateway_local.event_rules import EventRuleDelivery, check_event_rule_hook
from batch_gateway_local.inprocess_lambda import (
    CodeLocation,
    InProcessLambdaRuntime,
    Invocation,
    LambdaContext,
    check_invoke_hook,
)
from batch_gateway_local.sam_deploy import (
    SKIPPED_PREFIX,
    CloudFormationExtensions,
    LocalArtifact,
    OfflineStackError,
    find_dependency_cycle,
    load_template,
    package_local_artifacts,
    s3_bucket_configuration_calls,
    substitute_definition,
    substitution_value,
    translate_sam,
)
from batch_gateway_local.stream_mappings import StreamDelivery, check_stream_hook

TESTED_MOTO_VERSION = "5.2.5"
"""The moto release whose private hooks this module was written against (pinned in pyproject)."""

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


def check_moto_internals() -> list[str]:
    """Problems with the private moto pieces this package relies on (empty when all is as expected)."""
    problems = check_invoke_hook() + check_stream_hook() + check_event_rule_hook()
    try:
        from moto.cloudformation import parsing
        from moto.cloudformation.models import cloudformation_backends
        from moto.stepfunctions.parser.utils import TMP_THREADS
    except ImportError as exc:  # pragma: no cover - only with another moto
        return [*problems, f"moto module moved: {exc}"]
    for name in (
        "resource_class_from_type",
        "parse_and_create_resource",
        "clean_json",
        "get_model_map",
        "NULL_MODELS",
    ):
        if not hasattr(parsing, name):
            problems.append(f"moto.cloudformation.parsing.{name} no longer exists")
    if not hasattr(cloudformation_backends, "__getitem__"):
        problems.append("moto.cloudformation.models.cloudformation_backends is not a mapping")
    if not isinstance(TMP_THREADS, list):
        problems.append("moto.stepfunctions.parser.utils.TMP_THREADS is not a list")
    from moto.s3 import notifications

    s3_event = getattr(notifications, "_get_s3_event", None)
    if s3_event is None or tuple(inspect.signature(s3_event).parameters) != (
        "event_name",
        "bucket",
        "key",
        "notification_id",
    ):
        problems.append("moto.s3.notifications._get_s3_event moved or changed its signature")
    from moto.awslambda.models import LambdaBackend, LambdaFunction

    if not hasattr(LambdaBackend, "layers_versions_by_arn"):
        problems.append("moto.awslambda.models.LambdaBackend.layers_versions_by_arn no longer exists")
    if not hasattr(LambdaFunction, "save_logs"):
        problems.append("moto.awslambda.models.LambdaFunction.save_logs no longer exists")
    return problems


_SEQUENCER = itertools.count(int(time.time() * 1000) << 16)


def complete_s3_event(event: dict[str, Any], key: Any) -> dict[str, Any]:
    """Add the fields of a real S3 event record that moto's notification leaves out.

    moto 5.2.5 omits ``userIdentity``, ``requestParameters``, ``responseElements``,
    ``s3.bucket.ownerIdentity``, ``s3.object.versionId`` (versioned buckets) and
    ``s3.object.sequencer``; Powertools' S3 parser model requires some of them, and the version id
    is what makes an upload unique. moto also form-encodes the whole key (``inbox%2Fa.jsonl``)
    where S3 leaves the slashes alone (``inbox/a.jsonl``; a space still becomes ``+``, other
    special characters ``%XX``, so handlers must still ``unquote_plus`` the key): the key is
    re-encoded the S3 way.
    """
    version_id = getattr(key, "version_id", None)
    for record in event.get("Records", []):
        record.setdefault("userIdentity", {"principalId": "AWS:OFFLINESTACK"})
        record.setdefault("requestParameters", {"sourceIPAddress": "127.0.0.1"})
        record.setdefault(
            "responseElements",
            {"x-amz-request-id": uuid.uuid4().hex[:16].upper(), "x-amz-id-2": uuid.uuid4().hex},
        )
        s3 = record.get("s3", {})
        s3.get("bucket", {}).setdefault("ownerIdentity", {"principalId": "OFFLINESTACK"})
        obj = s3.get("object", {})
        if isinstance(obj.get("key"), str):
            obj["key"] = quote_plus(unquote_plus(obj["key"]), safe="/")
        if version_id and version_id != "null":
            obj.setdefault("versionId", str(version_id))
        obj.setdefault("sequencer", f"{next(_SEQUENCER):016X}")
    return event


def _patch_s3_events() -> ExitStack:
    from moto.s3 import notifications
    from moto.s3.responses import S3Response

    original_event = notifications._get_s3_event
    original_send = notifications.send_event
    original_key_response = S3Response.key_response
    deferred = threading.local()

    def _get_s3_event(event_name: Any, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        return complete_s3_event(original_event(event_name, bucket, key, notification_id), key)

    def send_event(*args: Any, **kwargs: Any) -> None:
        queue = getattr(deferred, "events", None)
        if queue is None:
            original_send(*args, **kwargs)
        else:
            queue.append((args, kwargs))

    def key_response(self: Any, *args: Any, **kwargs: Any) -> Any:
        # moto sends the ObjectCreated event from inside PutObject, before it stores the object's
        # metadata; S3 notifies only once the object is complete. Hold events until the request is done.
        if getattr(deferred, "events", None) is not None:
            return original_key_response(self, *args, **kwargs)
        deferred.events = []
        try:
            return original_key_response(self, *args, **kwargs)
        finally:
            events, deferred.events = deferred.events, None
            for event_args, event_kwargs in events:
                original_send(*event_args, **event_kwargs)

    stack = ExitStack()
    stack.enter_context(mock.patch.object(notifications, "_get_s3_event", _get_s3_event))
    stack.enter_context(mock.patch.object(notifications, "send_event", send_event))
    stack.enter_context(mock.patch.object(S3Response, "key_response", key_response))
    return stack


def _offline_environment(region: str) -> None:
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


def _share_global_sdk_settings(template: Mapping[str, Any]) -> None:
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


class OfflineStack:
    """A SAM stack deployed into moto with its Lambda handlers running in-process.

    Parameters:
        template_path: the SAM (or plain CloudFormation) template.
        project_root: base directory of relative ``CodeUri``/``ContentUri``/``DefinitionUri``
            paths; defaults to the template's directory (SAM's rule).
        parameter_overrides: template parameter values (as for ``sam deploy --parameter-overrides``).
        definition_substitution_overrides: replace values of ``DefinitionSubstitutions`` keys of
            the state machines after resolving them (e.g. ``{"WaitSeconds": "0"}``); every key must
            exist in some state machine's substitutions.
        region, stack_name: where and under which name the stack is created.
        shutdown_timeout: seconds to wait for Step Functions threads when leaving.
        lock_timeout: seconds an invocation waits for another one before failing
            (``OfflineStack.LockTimeout``) instead of deadlocking.

    After ``__enter__``: ``outputs`` (stack Outputs), ``resources`` (logical id -> physical id),
    ``resource_types``, ``functions`` (logical id -> function name), ``state_machines`` (logical
    id -> ARN), ``skipped_resources`` (logical id -> type of resources moto cannot create and that
    were replaced by placeholders), ``session`` (boto3 session bound to the mock; see also
    :meth:`client`), ``account_id``, ``translated_template``, ``artifacts``, ``invocations``.
    """

    def __init__(
        self,
        template_path: Path,
        project_root: Path | None = None,
        parameter_overrides: Mapping[str, str] | None = None,
        definition_substitution_overrides: Mapping[str, str] | None = None,
        region: str = "us-east-1",
        *,
        stack_name: str = "offline",
        shutdown_timeout: float = 10.0,
        lock_timeout: float = 300.0,
    ) -> None:
        self.template_path = Path(template_path).resolve()
        self.project_root = Path(project_root).resolve() if project_root else self.template_path.parent
        self.parameter_overrides = {k: str(v) for k, v in (parameter_overrides or {}).items()}
        self.definition_substitution_overrides = {
            k: str(v) for k, v in (definition_substitution_overrides or {}).items()
        }
        self.region = region
        self.stack_name = stack_name
        self.shutdown_timeout = shutdown_timeout
        self.lock_timeout = lock_timeout

        self.outputs: dict[str, str] = {}
        self.resources: dict[str, str] = {}
        self.resource_types: dict[str, str] = {}
        self.functions: dict[str, str] = {}
        self.state_machines: dict[str, str] = {}
        self.skipped_resources: dict[str, str] = {}
        self.translated_template: dict[str, Any] = {}
        self.artifacts: list[LocalArtifact] = []
        self.account_id = ""
        self.stack_id = ""
        self.session = boto3.session.Session(
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
            region_name=region,
        )
        self._exit_stack: ExitStack | None = None
        self._runtime: InProcessLambdaRuntime | None = None
        self._thread_mark = 0

    # -- context manager -----------------------------------------------------------------------

    def __enter__(self) -> OfflineStack:
        if self._exit_stack is not None:
            raise OfflineStackError("this OfflineStack is already running")
        problems = check_moto_internals()
        if problems:
            raise OfflineStackError("moto internals changed: " + "; ".join(problems))
        self._exit_stack = ExitStack()
        try:
            self._start(self._exit_stack)
        except BaseException:
            exit_stack, self._exit_stack = self._exit_stack, None
            exit_stack.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        exit_stack, self._exit_stack = self._exit_stack, None
        if exit_stack is not None:
            exit_stack.close()

    # -- public helpers ------------------------------------------------------------------------

    def client(self, service_name: str) -> Any:
        """A boto3 client for ``service_name`` bound to the mock (same as ``session.client``)."""
        return self.session.client(service_name)  # type: ignore[call-overload]

    @contextmanager
    def between_invocations(self) -> Iterator[None]:
        """Reads of the mock's tables in here never overlap a handler's writes (see InProcessLambdaRuntime)."""
        if self._runtime is None:
            yield
            return
        with self._runtime.between_invocations():
            yield

    @property
    def invocations(self) -> list[Invocation]:
        """Every in-process handler call so far (S3-triggered failures show up only here)."""
        return self._runtime.invocations if self._runtime else []

    def failed_invocations(self) -> list[Invocation]:
        return [i for i in self.invocations if not i.ok]

    def function_logs(self, function: str) -> str:
        """Captured output (stdout/stderr, START/END/REPORT, tracebacks) of one function.

        ``function`` is a logical id of the template or a function name.
        """
        name = self.functions.get(function, function)
        return "".join(i.logs for i in self.invocations if i.function_name == name)

    def resolve(self, value: Any) -> Any:
        """Resolve CloudFormation intrinsics in ``value`` against the deployed stack (as moto does)."""
        from moto.cloudformation.parsing import clean_json

        return clean_json(copy.deepcopy(value), self._moto_stack().resource_map)

    def wait_for_execution(
        self, execution_arn: str, timeout: float = 60.0, interval: float = 0.05
    ) -> dict[str, Any]:
        """Poll DescribeExecution until the execution leaves RUNNING; returns the description."""
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            description = cast(dict[str, Any], sfn.describe_execution(executionArn=execution_arn))
            if description["status"] != "RUNNING":
                return description
            if time.monotonic() > deadline:
                events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)
                recent = [e["type"] for e in events.get("events", [])][-5:]
                raise TimeoutError(
                    f"{execution_arn} still RUNNING after {timeout} s; latest events: {recent}"
                )
            time.sleep(interval)

    # -- start ---------------------------------------------------------------------------------

    def _start(self, exit_stack: ExitStack) -> None:
        from moto import mock_aws
        from moto.stepfunctions.parser.utils import TMP_THREADS

        exit_stack.enter_context(mock.patch.dict(os.environ))
        _offline_environment(self.region)
        exit_stack.enter_context(mock_aws(config={"stepfunctions": {"execute_state_machine": True}}))
        self._runtime = InProcessLambdaRuntime(lock_timeout=self.lock_timeout)
        exit_stack.enter_context(self._runtime)
        extensions = exit_stack.enter_context(CloudFormationExtensions())
        exit_stack.enter_context(_patch_s3_events())
        # DynamoDB stream mappings: delivered after the write, filtered and in order (see stream_mappings).
        exit_stack.enter_context(StreamDelivery())
        exit_stack.enter_context(EventRuleDelivery())
        self._thread_mark = len(TMP_THREADS)
        exit_stack.callback(self._stop_executions)

        self.account_id = str(self.client("sts").get_caller_identity()["Account"])
        template = load_template(self.template_path)
        self._check_parameters(template)
        _share_global_sdk_settings(template)
        bucket = f"offline-stack-artifacts-{self.account_id}-{self.region}"
        self.artifacts = package_local_artifacts(template, self.project_root, bucket)
        self.translated_template = translate_sam(template, self.parameter_overrides, self.region)
        self._upload_artifacts(bucket)
        self._create_stack(extensions)
        self._attach_layers()
        self._configure_buckets()
        self._configure_table_ttl()
        self._recreate_state_machines()
        self._register_function_environments()

    def _check_parameters(self, template: Mapping[str, Any]) -> None:
        declared = set((template.get("Parameters") or {}).keys())
        unknown = sorted(set(self.parameter_overrides) - declared)
        if unknown:
            raise OfflineStackError(f"parameter_overrides not declared in the template: {', '.join(unknown)}")

    def _upload_artifacts(self, bucket: str) -> None:
        s3 = self.client("s3")
        if self.region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": self.region})
        assert self._runtime is not None
        for artifact in self.artifacts:
            s3.put_object(Bucket=bucket, Key=artifact.key, Body=artifact.body)
            if artifact.kind in ("function", "layer"):
                self._runtime.add_code_location(CodeLocation(bucket, artifact.key, artifact.local_path))

    def _create_stack(self, extensions: CloudFormationExtensions) -> None:
        cycle = find_dependency_cycle(self.translated_template)
        if cycle:
            raise OfflineStackError(
                f"circular dependency between resources: {' -> '.join(cycle)} "
                "(CloudFormation rejects it too; cfn-lint reports it as E3004)"
            )
        cfn = self.client("cloudformation")
        try:
            response = cfn.create_stack(
                StackName=self.stack_name,
                TemplateBody=json.dumps(self.translated_template),
                Parameters=[
                    {"ParameterKey": k, "ParameterValue": v} for k, v in self.parameter_overrides.items()
                ],
                Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
            )
        except Exception as exc:
            raise OfflineStackError(
                self._creation_report(f"{type(exc).__name__}: {exc}", extensions)
            ) from exc
        self.stack_id = str(response["StackId"])
        deadline = time.monotonic() + 30
        while True:
            stack = cfn.describe_stacks(StackName=self.stack_id)["Stacks"][0]
            status = str(stack["StackStatus"])
            if not status.endswith("IN_PROGRESS"):
                break
            if time.monotonic() > deadline:
                raise OfflineStackError(f"stack {self.stack_name} still {status} after 30 s")
            time.sleep(0.05)
        if status != "CREATE_COMPLETE":
            events = cfn.describe_stack_events(StackName=self.stack_id)["StackEvents"]
            reasons = [
                f"{e.get('LogicalResourceId')}: {e.get('ResourceStatus')} {e.get('ResourceStatusReason', '')}"
                for e in events
                if "FAILED" in str(e.get("ResourceStatus", ""))
            ]
            raise OfflineStackError(
                self._creation_report(f"stack status {status}; " + "; ".join(reasons), extensions)
            )
        self.outputs = {str(o["OutputKey"]): str(o["OutputValue"]) for o in stack.get("Outputs", [])}
        for resource in cfn.describe_stack_resources(StackName=self.stack_id)["StackResources"]:
            if "LogicalResourceId" not in resource:
                continue  # moto lists a resource whose Condition is false as an empty entry
            logical_id = str(resource["LogicalResourceId"])
            self.resources[logical_id] = str(resource.get("PhysicalResourceId", ""))
            self.resource_types[logical_id] = str(resource["ResourceType"])
        self.functions = {
            k: v for k, v in self.resources.items() if self.resource_types[k] == "AWS::Lambda::Function"
        }
        self.skipped_resources = {
            k: self.resource_types[k] for k, v in self.resources.items() if v == f"{SKIPPED_PREFIX}{k}"
        }

    def _creation_report(self, error: str, extensions: CloudFormationExtensions) -> str:
        lines = [f"creating stack {self.stack_name!r} from {self.template_path} in moto failed"]
        if extensions.failures:
            lines[0] += "; resource failures (innermost first):"
            unique = dict.fromkeys(
                f"  - {f.logical_id} ({f.resource_type}): {f.error}" for f in extensions.failures
            )
            lines.extend(unique)
            lines.append(f"moto's CreateStack response: {error}")
        else:
            lines[0] += f": {error}"
        return "\n".join(lines)

    def _moto_stack(self) -> Any:
        from moto.cloudformation.models import cloudformation_backends

        return cloudformation_backends[self.account_id][self.region].stacks[self.stack_id]

    def _template_resources(self, resource_type: str) -> list[tuple[str, dict[str, Any]]]:
        return [
            (logical_id, resource)
            for logical_id, resource in self.translated_template["Resources"].items()
            if resource.get("Type") == resource_type and logical_id in self.resources
        ]

    def _attach_layers(self) -> None:
        """moto's CloudFormation drops a function's ``Layers``; set them through the Lambda API."""
        lam = self.client("lambda")
        for logical_id, resource in self._template_resources("AWS::Lambda::Function"):
            layers = (resource.get("Properties") or {}).get("Layers")
            if not layers:
                continue
            arns = [str(arn) for arn in self.resolve(layers)]
            try:
                lam.update_function_configuration(FunctionName=self.resources[logical_id], Layers=arns)
            except Exception as exc:
                raise OfflineStackError(f"{logical_id}: setting Layers {arns} failed: {exc}") from exc

    def _configure_buckets(self) -> None:
        s3 = self.client("s3")
        for logical_id, resource in self._template_resources("AWS::S3::Bucket"):
            properties = self.resolve(resource.get("Properties") or {})
            for operation, kwargs in s3_bucket_configuration_calls(properties):
                try:
                    getattr(s3, operation)(Bucket=self.resources[logical_id], **kwargs)
                except Exception as exc:
                    raise OfflineStackError(f"{logical_id}: {operation} failed: {exc}") from exc

    def _configure_table_ttl(self) -> None:
        """moto's CloudFormation ignores a table's ``TimeToLiveSpecification``; set it through the API."""
        dynamodb = self.client("dynamodb")
        for logical_id, resource in self._template_resources("AWS::DynamoDB::Table"):
            ttl = self.resolve((resource.get("Properties") or {}).get("TimeToLiveSpecification"))
            if not isinstance(ttl, dict) or str(ttl.get("Enabled")).lower() != "true":
                continue
            dynamodb.update_time_to_live(
                TableName=self.resources[logical_id],
                TimeToLiveSpecification={"AttributeName": str(ttl["AttributeName"]), "Enabled": True},
            )

    def _definition_text(self, logical_id: str, properties: Mapping[str, Any]) -> str:
        if isinstance(properties.get("DefinitionString"), str):
            return str(properties["DefinitionString"])
        if isinstance(properties.get("Definition"), dict):
            return json.dumps(properties["Definition"])
        location = properties.get("DefinitionS3Location")
        if isinstance(location, dict):
            request = {"Bucket": str(location["Bucket"]), "Key": str(location["Key"])}
            if location.get("Version"):
                request["VersionId"] = str(location["Version"])
            return str(self.client("s3").get_object(**request)["Body"].read().decode("utf-8"))
        raise OfflineStackError(
            f"{logical_id}: state machine has no Definition, DefinitionString or DefinitionS3Location"
        )

    def _recreate_state_machines(self) -> None:
        sfn = self.client("stepfunctions")
        used_overrides: set[str] = set()
        for logical_id, resource in self._template_resources("AWS::StepFunctions::StateMachine"):
            arn = self.resources[logical_id]
            properties = self.resolve(resource.get("Properties") or {})
            substitutions = {
                str(k): substitution_value(v)
                for k, v in (properties.get("DefinitionSubstitutions") or {}).items()
            }
            for key, value in self.definition_substitution_overrides.items():
                if key in substitutions:
                    substitutions[key] = value
                    used_overrides.add(key)
            definition = substitute_definition(
                self._definition_text(logical_id, properties), substitutions, where=logical_id
            )
            request: dict[str, Any] = {
                "name": arn.rsplit(":", 1)[-1],
                "definition": definition,
                "roleArn": str(
                    properties.get("RoleArn") or f"arn:aws:iam::{self.account_id}:role/offline-stack"
                ),
                "type": str(properties.get("StateMachineType") or "STANDARD"),
            }
            tags = [{"key": str(t["Key"]), "value": str(t["Value"])} for t in properties.get("Tags") or []]
            if tags:
                request["tags"] = tags
            try:
                created = sfn.create_state_machine(**request)
            except Exception as exc:
                raise OfflineStackError(
                    f"{logical_id}: the substituted definition was rejected: {exc}"
                ) from exc
            if created["stateMachineArn"] != arn:
                raise OfflineStackError(
                    f"{logical_id}: recreated state machine has ARN {created['stateMachineArn']}, stack has {arn}"
                )
            self.state_machines[logical_id] = arn
        unused = sorted(set(self.definition_substitution_overrides) - used_overrides)
        if unused:
            raise OfflineStackError(
                f"definition_substitution_overrides keys not in any DefinitionSubstitutions: {', '.join(unused)}"
            )

    def _register_function_environments(self) -> None:
        assert self._runtime is not None
        lam = self.client("lambda")
        keys: set[str] = set()
        for name in self.functions.values():
            configuration = lam.get_function_configuration(FunctionName=name)
            keys |= set((configuration.get("Environment") or {}).get("Variables") or {})
        self._runtime.add_function_env_keys(keys)

    # -- stop ----------------------------------------------------------------------------------

    def _stop_executions(self) -> None:
        # A stopped execution makes the interpreter log errors (e.g. from an aborted Map) while it
        # unwinds: expected here, so keep them quiet until its threads are gone.
        interpreter_log = logging.getLogger("moto.stepfunctions")
        level = interpreter_log.level
        interpreter_log.setLevel(logging.CRITICAL)
        try:
            self._stop_and_join()
        finally:
            interpreter_log.setLevel(level)

    def _stop_and_join(self) -> None:
        from moto.stepfunctions.parser.utils import TMP_THREADS

        try:
            sfn = self.client("stepfunctions")
            for machine in sfn.list_state_machines().get("stateMachines", []):
                running = sfn.list_executions(
                    stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING"
                )
                for execution in running.get("executions", []):
                    try:
                        sfn.stop_execution(executionArn=execution["executionArn"])
                    except Exception:  # noqa: S112 - it may have finished meanwhile
                        continue
        except Exception as exc:
            warnings.warn(f"OfflineStack: could not stop running executions: {exc}", stacklevel=2)
        deadline = time.monotonic() + self.shutdown_timeout
        threads = list(TMP_THREADS[self._thread_mark :])
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in threads if t.is_alive()]
        if alive:
            warnings.warn(
                f"OfflineStack: {len(alive)} Step Functions thread(s) still running after "
                f"{self.shutdown_timeout} s; they may call AWS APIs after the mock stopped",
                stacklevel=2,
            )


__all__ = [
    "TESTED_MOTO_VERSION",
    "Invocation",
    "LambdaContext",
    "OfflineStack",
    "OfflineStackError",
    "check_moto_internals",
]
