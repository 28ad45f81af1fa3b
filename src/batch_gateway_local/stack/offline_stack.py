"""Deploy a SAM template.yaml into moto, in this process, and run its Lambda handlers here.

``OfflineStack`` is a context manager. Entering it fakes AWS credentials (no boto3 client can reach
a real endpoint), starts ``moto.mock_aws`` with Step Functions execution on, packages the local code
and translates the template (``stack.sam``), creates the CloudFormation stack in moto, applies what
moto's CloudFormation ignores (layers, bucket notifications and versioning, table TTL), recreates the
state machines on the executing backend with their DefinitionSubstitutions (those CloudFormation
steps: ``stack.cfn_deploy``), and installs the in-process Lambda runtime (``stack.lambda_runtime``).
Leaving it stops running executions, removes the patches and the mock, and restores ``os.environ``.

What moto's Step Functions interpreter runs, and the pitfalls: docs/offline-stack.md.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, cast
from unittest import mock

import boto3

from batch_gateway_local.stack.cfn_deploy import (
    attach_function_layers,
    configure_buckets,
    configure_table_ttl,
    create_stack,
    recreate_state_machines,
)
from batch_gateway_local.stack.errors import OfflineStackError
from batch_gateway_local.stack.event_rules import EventRuleDelivery
from batch_gateway_local.stack.iam.calls import Where
from batch_gateway_local.stack.iam.recorder import IamCheck
from batch_gateway_local.stack.iam.setup import start_iam_checks
from batch_gateway_local.stack.lambda_runtime.context import Invocation
from batch_gateway_local.stack.lambda_runtime.handlers import CodeLocation
from batch_gateway_local.stack.lambda_runtime.runtime import InProcessLambdaRuntime
from batch_gateway_local.stack.moto_checks import check_moto_internals
from batch_gateway_local.stack.s3_events import patch_s3_events
from batch_gateway_local.stack.sam.artifacts import LocalArtifact, package_local_artifacts
from batch_gateway_local.stack.sam.cfn_extensions import CloudFormationExtensions
from batch_gateway_local.stack.sam.resources import SKIPPED_PREFIX
from batch_gateway_local.stack.sam.state_machines import stop_executions
from batch_gateway_local.stack.sam.template import find_dependency_cycle, load_template, translate_sam
from batch_gateway_local.stack.sandbox import FAKE_CREDENTIALS, offline_environment, share_global_sdk_settings
from batch_gateway_local.stack.sfn_history import ChildExecutionHistories
from batch_gateway_local.stack.sfn_stop import patch_stop_execution
from batch_gateway_local.stack.stream_mappings import StreamDelivery


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
        iam: check every AWS call a handler, the state machine or Bedrock makes against its role
            in the template and answer a call the role does not allow with AccessDenied
            (``iam_check`` holds the record); sign it with the role's credentials and let moto
            enforce IAM too. False records nothing and allows everything.

    After ``__enter__``: ``outputs`` (stack Outputs), ``resources`` (logical id -> physical id),
    ``resource_types``, ``functions`` (logical id -> function name), ``state_machines`` (logical
    id -> ARN), ``skipped_resources`` (logical id -> type of resources moto cannot create and that
    were replaced by placeholders), ``session`` (boto3 session bound to the mock; see also
    :meth:`client`), ``account_id``, ``translated_template``, ``artifacts``, ``invocations``,
    ``child_histories`` (each Distributed Map child execution's history size, ``stack.sfn_history``).
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
        iam: bool = True,
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
        self.iam = iam
        self.iam_check: IamCheck | None = None
        self.child_histories: ChildExecutionHistories | None = None

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
        offline_environment(self.region)
        exit_stack.enter_context(mock_aws(config={"stepfunctions": {"execute_state_machine": True}}))
        self._runtime = InProcessLambdaRuntime(lock_timeout=self.lock_timeout)
        exit_stack.enter_context(self._runtime)
        extensions = exit_stack.enter_context(CloudFormationExtensions())
        exit_stack.enter_context(patch_s3_events())
        exit_stack.enter_context(patch_stop_execution())  # immediate, as on AWS (sfn_stop)
        # DynamoDB stream mappings: delivered after the write, filtered and in order (see stream_mappings).
        exit_stack.enter_context(StreamDelivery())
        exit_stack.enter_context(EventRuleDelivery())
        # Each Distributed Map child's history, which moto discards (measurement only: sfn_history).
        self.child_histories = exit_stack.enter_context(ChildExecutionHistories())
        self._thread_mark = len(TMP_THREADS)
        exit_stack.callback(self._stop_executions)

        self.account_id = str(self.client("sts").get_caller_identity()["Account"])
        template = load_template(self.template_path)
        self._check_parameters(template)
        share_global_sdk_settings(template)
        bucket = f"offline-stack-artifacts-{self.account_id}-{self.region}"
        self.artifacts = package_local_artifacts(template, self.project_root, bucket)
        self.translated_template = translate_sam(template, self.parameter_overrides, self.region)
        self._upload_artifacts(bucket)
        self._create_stack(extensions)
        if self.iam:  # both checks: docs/offline-stack.md, "IAM offline"
            where = Where("aws", self.region, self.account_id)
            args = (self.translated_template, self.functions, self.resources, self.resolve)
            self.iam_check = start_iam_checks(exit_stack, self.session, where, *args)
        self._apply_what_moto_ignores()
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
        args = (self.template_path, self.translated_template, self.parameter_overrides, extensions)
        created = create_stack(self.client("cloudformation"), self.stack_name, *args)
        self.stack_id, self.outputs = created.stack_id, created.outputs
        self.resources.update(created.resources)
        self.resource_types.update(created.resource_types)
        self.functions = {
            k: v for k, v in self.resources.items() if self.resource_types[k] == "AWS::Lambda::Function"
        }
        self.skipped_resources = {
            k: self.resource_types[k] for k, v in self.resources.items() if v == f"{SKIPPED_PREFIX}{k}"
        }

    def _moto_stack(self) -> Any:
        from moto.cloudformation.models import cloudformation_backends

        return cloudformation_backends[self.account_id][self.region].stacks[self.stack_id]

    def _apply_what_moto_ignores(self) -> None:
        """Layers, bucket and table configuration, and the state machines on the executing backend
        (``stack.cfn_deploy``)."""
        deployed = (self.translated_template, self.resources, self.resolve)
        attach_function_layers(self.client("lambda"), *deployed)
        configure_buckets(self.client("s3"), *deployed)
        configure_table_ttl(self.client("dynamodb"), *deployed)
        clients = (self.client("stepfunctions"), self.client("s3"))
        overrides = self.definition_substitution_overrides
        self.state_machines.update(recreate_state_machines(clients, *deployed, overrides, self.account_id))

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
        from moto.stepfunctions.parser.utils import TMP_THREADS

        stop_executions(
            self.client("stepfunctions"), lambda: TMP_THREADS[self._thread_mark :], self.shutdown_timeout
        )
