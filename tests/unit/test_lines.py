"""Reading numbered lines (``lines.iter_numbered_lines``): editor line numbers across blocks, CRLF and
BOM, and a line over the cap cut short without shifting the next numbers."""

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


def test_a_line_over_the_cap_is_cut_short_and_the_next_lines_keep_their_numbers() -> None:
    endless = b"x" * 50_000  # no line end for many blocks: never held whole
    stream = io.BytesIO(b'{"a": 1}\n' + endless + b"\r\n" + b'{"b": 2}\n' + endless)
    lines = list(iter_numbered_lines(stream, block_bytes=1000, max_line_bytes=100))
    assert [number for number, _ in lines] == [1, 2, 3, 4]
    assert lines[0][1] == b'{"a": 1}'
    assert lines[2][1] == b'{"b": 2}'
    assert 100 < len(lines[1][1]) <= 102
    assert 100 < len(lines[3][1]) <= 102
