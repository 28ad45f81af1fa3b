"""The workflow: what each Step Functions step does for a job (statemachine/batch_job.asl.json).

- ``payloads``: every step's input and output model (the contract with the state machine);
- ``submit``, ``poll``, ``collect``: the per-chunk loop (create each batch once, wait, collect
  and retry rounds); ``wakeup``: parking a chunk's wait until the provider's notification;
- ``finalize``: the job's results file, summary and row (and the catch-all MarkFailed);
- ``cancel``: asking every running batch of a job to stop (the API's cancel).
"""
