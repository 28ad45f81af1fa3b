"""The offline stack: template.yaml deployed into moto in this process, its handlers running here.

offline_stack (OfflineStack, the context manager), cfn_deploy (its CloudFormation steps: create the
stack, then apply what moto's CloudFormation ignores), sandbox (fake credentials, no real endpoint),
moto_checks (moto's private pieces checked), sam/ (the SAM deployer, one module per resource kind),
lambda_runtime/ (the in-process Lambda runtime), s3_events, stream_mappings, event_rules, schedules
(what moto stores but does not deliver or fire), local_gateway (the whole gateway: the real template
on moto, the emulator as providers) and local_options (its knobs), errors. What moto runs and the
pitfalls: docs/offline-stack.md.
"""
