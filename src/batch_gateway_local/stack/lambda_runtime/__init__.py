"""The in-process Lambda runtime: moto's Lambda functions run in this process instead of in Docker.

runtime (the replacement for moto's invoke, the lock, the START/END/REPORT log lines), context (the
Lambda context object, the invocation record, error payloads), environ (each function's environment
and the snapshot ``os.environ``), capture (a handler's stdout/stderr per invocation), handlers (where
a function's code is, and its handler imported once).
"""
