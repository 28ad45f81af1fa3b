"""The calls moto's Step Functions interpreter makes are the state machine's role's.

Every AWS call of the interpreter (a Task's ``lambda:InvokeFunction``, the Distributed Map's
ItemReader ``s3:GetObject`` of its manifest, an ``arn:aws:states:::states:startExecution`` task...)
goes through one function, ``moto.stepfunctions.parser.asl.utils.boto_client_for(region, service,
state_credentials)``, whose ``state_credentials.role_arn`` is the execution's role (or a Task's own
``Credentials.RoleArn``). The modules that imported it get a wrapper that tags the client with that
role (``recorder.tag_client``): the recorder checks its calls against the role's policy, and the
signer signs them with the role's assumed credentials. A Distributed Map's child executions are
started inside moto, not through StartExecution, so that grant is not exercised offline.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

from batch_gateway_local.stack.iam.recorder import tag_client

_USERS = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_eval_s3",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk",
)
_SOURCE = "moto.stepfunctions.parser.asl.utils.boto_client"


@contextmanager
def interpreter_clients_act_for_their_role() -> Iterator[None]:
    """While inside, each interpreter client is tagged with the role of the state it runs for."""
    source = importlib.import_module(_SOURCE)
    original = source.boto_client_for
    for name in _USERS:
        importlib.import_module(name)

    def boto_client_for(*args: Any, **kwargs: Any) -> Any:
        client = original(*args, **kwargs)
        credentials = kwargs.get("state_credentials", args[2] if len(args) > 2 else None)
        role_arn = getattr(credentials, "role_arn", None)
        return tag_client(client, role_arn) if isinstance(role_arn, str) and role_arn else client

    users = [
        module
        for name, module in list(sys.modules.items())
        if name.startswith("moto.stepfunctions.parser")
        and getattr(module, "boto_client_for", None) is original
    ]
    with ExitStack() as patches:
        for module in users:
            patches.enter_context(mock.patch.object(module, "boto_client_for", boto_client_for))
        yield
