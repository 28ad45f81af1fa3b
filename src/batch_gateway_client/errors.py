"""The one exception of the client: an error answer of the API, or a call that could not be made.

``GatewayError(status, code, message, details)`` carries the API's error body as it came
(``{"error", "message", "details"}``): ``status`` is the HTTP status (0 when no answer came: a
connection that failed after every retry, a missing endpoint or credential), ``code`` the API's
stable machine-readable code (``invalid_items``, ``not_found``, ``idempotency_key_reused``...),
``details`` what it listed (for a 422 on items: one ``{line, field, reason, custom_id}`` per bad line,
see :attr:`GatewayError.bad_lines`). ``str()`` of it is a sentence a person can act on.
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    """An error answer of the Batch Gateway API (or a call that could not be made: ``status`` 0)."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{message} ({code}, HTTP {status})" if status else f"{message} ({code})")
        self.status, self.code, self.message, self.details = status, code, message, details

    @property
    def bad_lines(self) -> list[dict[str, Any]]:
        """For a 422 on items: the line errors ({line, field, reason, custom_id}); else empty."""
        if not isinstance(self.details, list):
            return []
        return [d for d in self.details if isinstance(d, dict) and "line" in d]

    def describe(self, max_details: int = 10) -> str:
        """The message and up to ``max_details`` listed problems, one per line (for a terminal)."""
        lines = [str(self)]
        for detail in (self.details if isinstance(self.details, list) else [])[:max_details]:
            if isinstance(detail, dict) and "line" in detail:
                where = f"line {detail['line']}" + (
                    f" ({detail['custom_id']})" if detail.get("custom_id") else ""
                )
                lines.append(f"  {where}: {detail.get('field', '')}: {detail.get('reason', '')}")
            else:
                lines.append(f"  {detail}")
        return "\n".join(lines)


__all__ = ["GatewayError"]
