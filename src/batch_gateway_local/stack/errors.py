"""The one error of the offline stack: the template cannot be deployed or run offline.

Raised by the SAM deployer (``stack.sam``) and by :class:`~batch_gateway_local.stack.offline_stack.OfflineStack`
itself; the message names the resource or setting at fault and why.
"""


class OfflineStackError(RuntimeError):
    """The template cannot be deployed or run offline; the message says why."""


class IamDeniedError(OfflineStackError):
    """A handler made an AWS call its role in the template does not allow (the offline IAM check)."""
