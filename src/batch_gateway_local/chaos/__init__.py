"""``make chaos``: many seeded jobs through the offline stack while faults strike at random.

``workload`` writes the jobs (mixed providers, sizes from one line to several chunks, item errors,
expiring batches), ``runner`` runs them with a :class:`~batch_gateway_local.stack.faults.FaultPlan`
installed and the reconciler firing on a timer, ``report`` counts what a user would care about: lines
lost, lines answered twice, provider batches paid twice, orphan batches, stuck jobs, faults by kind.
"""
