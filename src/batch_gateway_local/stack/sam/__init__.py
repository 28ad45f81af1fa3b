"""The SAM deployer of the offline stack: a template.yaml made into a stack moto's CloudFormation creates.

template (read YAML/JSON, SAM -> CloudFormation offline, dependency cycles, the deployer's error),
artifacts (local code and definitions -> moto's S3), resources (the one base of every kind moto is
taught, and the placeholder for skipped types), lambda_resources, secrets, buckets, state_machines
(one module per resource kind), cfn_extensions (the patch that teaches moto those kinds).
See docs/offline-stack.md for what moto lacks and what is done about each.
"""
