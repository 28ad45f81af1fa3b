"""A minimal multipart/form-data parser for the emulated Files upload (linear in the body size).

Kept here because the stdlib has none since ``cgi`` was removed (Python 3.13) and a dependency for one
form with two fields is not worth it: :func:`boundary_of` reads the boundary from the Content-Type,
:func:`parse_multipart` splits the body into :class:`Part` objects (one copy per part), using
``email`` only for each part's headers.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    content_type: str | None
    data: bytes

    def text(self) -> str:
        return self.data.decode("utf-8")


def boundary_of(content_type: str) -> str | None:
    msg = Message()
    msg["content-type"] = content_type
    if msg.get_content_type() != "multipart/form-data":
        return None
    boundary = msg.get_param("boundary")
    return boundary if isinstance(boundary, str) and boundary else None


def _part_headers(blob: bytes) -> Message:
    msg = Message()
    for raw in blob.split(b"\r\n"):
        if not raw:
            continue
        name, sep, value = raw.decode("utf-8", errors="replace").partition(":")
        if sep:
            msg[name.strip()] = value.strip()
    return msg


def parse_multipart(body: bytes, boundary: str) -> dict[str, Part]:
    """Parts by field name (the last one wins). Raises ValueError on malformed input."""
    delim = b"--" + boundary.encode("latin-1")
    parts: dict[str, Part] = {}
    pos = body.find(delim)
    if pos < 0:
        raise ValueError("multipart boundary not found")
    pos += len(delim)
    while not body.startswith(b"--", pos):
        if body.startswith(b"\r\n", pos):
            pos += 2
        end = body.find(b"\r\n" + delim, pos)
        if end < 0:
            raise ValueError("unterminated multipart part")
        header_end = body.find(b"\r\n\r\n", pos, end)
        if header_end < 0:
            raise ValueError("multipart part without headers")
        headers = _part_headers(body[pos:header_end])
        name = headers.get_param("name", header="content-disposition")
        if isinstance(name, str):
            parts[name] = Part(
                name=name,
                filename=headers.get_filename(),
                content_type=headers.get("content-type"),
                data=body[header_end + 4 : end],
            )
        pos = end + 2 + len(delim)
    return parts
