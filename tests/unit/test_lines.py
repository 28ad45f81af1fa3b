import io

from batch_gateway.lines import iter_numbered_lines


def lines(data: bytes, block: int = 4) -> list[tuple[int, bytes]]:
    return list(iter_numbered_lines(io.BytesIO(data), block_bytes=block))


def test_line_numbers_match_an_editor_across_block_boundaries() -> None:
    assert lines(b'{"a":1}\n\n{"b":22}\n') == [(1, b'{"a":1}'), (2, b""), (3, b'{"b":22}')]


def test_crlf_bom_and_missing_final_newline_are_accepted() -> None:
    assert lines(b'\xef\xbb\xbf{"a":1}\r\n{"b":2}', block=1024) == [(1, b'{"a":1}'), (2, b'{"b":2}')]


def test_empty_stream_yields_nothing() -> None:
    assert lines(b"") == []
