"""Log formats: one JSON object per line with the extra fields, or a console line."""

from __future__ import annotations

import json
import logging

from streaming.logs import JsonFormatter, TextFormatter


def _record(**extra):
    record = logging.LogRecord("streaming.requests", logging.INFO, __file__, 1, "page %s", ("ok",), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_lines_carry_the_extra_fields():
    line = JsonFormatter().format(_record(connection=7, package="N:package:x", ms=1.5, outcome="ok"))
    payload = json.loads(line)
    assert "\n" not in line
    assert payload["message"] == "page ok" and payload["level"] == "INFO"
    assert payload["logger"] == "streaming.requests"
    assert (payload["connection"], payload["package"], payload["ms"]) == (7, "N:package:x", 1.5)
    assert payload["time"].endswith("Z")


def test_json_lines_include_exceptions():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    payload = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in payload["exception"]


def test_text_lines_append_extra_fields():
    line = TextFormatter().format(_record(connection=7, outcome="ok"))
    assert line.endswith("page ok connection=7 outcome=ok")
