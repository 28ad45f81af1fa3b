"""The IAM report's reasons for a state machine's grants: per use of a policy template, and on a
separate ``AWS::IAM::Policy`` attached to its role."""

from __future__ import annotations

from batch_gateway_local.stack.iam.report import Grant, reason_for, template_reasons
from batch_gateway_local.stack.iam.workload import policy_template_names

TEMPLATE = """Resources:
  Machine:
    Type: AWS::Serverless::StateMachine
    Properties:
      Policies:
        - LambdaInvokePolicy:
            FunctionName: !Ref Work
        - LambdaInvokePolicy:  # iam: only when a chunk fails
            FunctionName: !Ref MarkFailed
  MachineChildren:
    Type: AWS::IAM::Policy
    Properties:
      PolicyDocument:
        Statement:
          - Sid: StartChildren  # iam: Step Functions starts them itself
"""
SAM = {
    "Resources": {
        "Machine": {
            "Type": "AWS::Serverless::StateMachine",
            "Properties": {
                "Policies": [
                    {"LambdaInvokePolicy": {"FunctionName": "w"}},
                    {"LambdaInvokePolicy": {"FunctionName": "m"}},
                ]
            },
        }
    }
}


def test_each_use_of_a_policy_template_has_its_own_reason() -> None:
    reasons, names = template_reasons(TEMPLATE), policy_template_names(SAM)
    work = Grant("Machine", "MachineRolePolicy0/#0", "lambda:InvokeFunction", "arn:...:function:w*")
    failed = Grant("Machine", "MachineRolePolicy1/#0", "lambda:InvokeFunction", "arn:...:function:m*")
    assert reason_for(failed, reasons, names) == "only when a chunk fails"
    assert reason_for(work, reasons, names) is None


def test_a_statement_of_a_policy_attached_to_the_role_finds_its_reason() -> None:
    grant = Grant("Machine", "MachineChildren/StartChildren", "states:StartExecution", "arn:...")
    assert reason_for(grant, template_reasons(TEMPLATE), {}) == "Step Functions starts them itself"
