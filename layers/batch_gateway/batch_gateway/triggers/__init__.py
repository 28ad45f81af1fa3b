"""What starts work besides an upload: events from outside, schedules, and the jobs table's stream.

* ``openai_webhooks``: OpenAI's signed ``batch.*`` webhooks wake the chunk waiting for that batch
  (replays answered once per ``webhook-id`` by Powertools Idempotency);
* ``bedrock_events``: Bedrock's job state-change events (EventBridge) do the same for Bedrock jobs;
* ``scheduling``: the scheduler submits every file under ``scheduled/`` once, through intake;
* ``job_events``: every job status change on the jobs table's stream becomes an EventBridge event;
* ``reconciliation``: a periodic sweep that resumes or ends jobs whose workflow died, and cleans up
  after finished ones; ``resume`` starts a dead job's workflow again from its uncollected chunks,
  ``forced_end`` ends a job without its workflow, keeping every answer already collected.

Each is the domain of one thin Lambda handler in ``functions/``.
"""
