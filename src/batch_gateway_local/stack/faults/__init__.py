"""Seeded fault injection for the offline stack (off unless a :class:`FaultPlan` is installed).

``plan`` says what may fail and how often; ``hooks`` puts the faults where real ones happen: a handler
dies before or after any AWS or provider call (as a Lambda timeout or out-of-memory kills it), a
provider answer is lost after the provider did the work, an event arrives twice or late, and an
execution is stopped while it waits. Nothing in the gateway's code knows: the faults come from
botocore, httpx and the stack's event deliveries, and recovery is Step Functions' retries, Lambda's
asynchronous retries, the reconciler and the idempotency records. ``make chaos`` drives it.
"""
