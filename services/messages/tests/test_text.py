"""Message text rules (domain/text.py)."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from chat_messages.domain.errors import Rejection
from chat_messages.domain.text import normalize_body


@pytest.mark.parametrize("control", ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\x9f"])
def test_a_control_character_is_refused_before_or_between_words(control: str) -> None:
    for body in (f"{control}hi", f"hi{control}there"):
        with pytest.raises(Rejection) as refused:
            normalize_body(body, has_attachments=False)
        assert refused.value.code == "invalid"


def test_tabs_newlines_and_other_characters_are_kept() -> None:
    body = "line one\n\tline two \u00a0\u200b\u2028 é 👋"
    assert normalize_body(body, has_attachments=False) == body.rstrip()


def test_exactly_unicodes_control_characters_but_tab_and_newline_are_refused() -> None:
    refused = set()
    for point in range(sys.maxunicode + 1):
        try:
            normalize_body(f"a{chr(point)}b", has_attachments=False)
        except Rejection:
            refused.add(point)
    controls = {p for p in range(sys.maxunicode + 1) if unicodedata.category(chr(p)) == "Cc"} - {0x09, 0x0A}
    assert refused == controls
