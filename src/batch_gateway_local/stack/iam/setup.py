"""Switch on both IAM checks of an offline stack, once its resources exist.

The recorded-call check (``recorder``, evaluated by ``policy``) for each function, each state
machine's role and each role Bedrock may assume; the interpreter's clients tagged with their role
(``interpreter``); each principal's role assumed and its requests signed with those credentials,
everything else with the admin user's (``credentials``); moto's own enforcement on
(``moto_enforcement``). Everything is undone by ``exit_stack``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import ExitStack
from typing import Any

from batch_gateway_local.stack.iam.calls import Where
from batch_gateway_local.stack.iam.credentials import create_identities, sign_as_principals
from batch_gateway_local.stack.iam.interpreter import interpreter_clients_act_for_their_role
from batch_gateway_local.stack.iam.moto_enforcement import moto_enforcement
from batch_gateway_local.stack.iam.recorder import IamCheck
from batch_gateway_local.stack.iam.roles import function_policies, other_principals


def start_iam_checks(
    exit_stack: ExitStack,
    session: Any,
    where: Where,
    translated: Mapping[str, Any],
    functions: Mapping[str, str],
    physical: Mapping[str, str],
    resolve: Callable[[Any], Any],
) -> IamCheck:
    role_arn = f"arn:{where.partition}:iam::{where.account}:role/"
    policies = function_policies(translated, functions, physical, resolve)
    policies.update(other_principals(translated, physical, resolve, role_arn))
    check = IamCheck(policies, where)
    check.install()
    exit_stack.callback(check.uninstall)
    exit_stack.enter_context(interpreter_clients_act_for_their_role())
    identities = create_identities(session, policies, role_arn)
    exit_stack.enter_context(sign_as_principals(identities))
    exit_stack.enter_context(moto_enforcement(where, check.record_moto_decision))
    return check
