"""Least privilege, checked offline: every AWS call a handler makes is evaluated against its role.

``recorder`` sees every botocore call and knows which function made it; ``calls`` turns a call into
the IAM requests AWS would authorize (action, resource ARN, condition keys); ``policy`` evaluates
them against the function's statements from the translated template; ``report`` sums it up
(``make iam-report``). docs/offline-stack.md, "IAM offline", says what is and is not checked.
"""
