"""Text from outside (news titles and summaries) made safe to show a model as data: markup stripped, control
characters dropped, whitespace collapsed, length bounded. The caller then quotes it inside a JSON data block that
the system prompt says holds no instructions. Pure."""

from __future__ import annotations

import html
import re

_TAG = re.compile(r"<[^>]{0,500}>")
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MARKUP = re.compile(r"[`*_#>|~]+|\[/?[A-Za-z]+[^\]]*\]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_SPACE = re.compile(r"\s+")


def plain_text(value: str | None, limit: int = 300) -> str:
    """``value`` without HTML or Markdown markup, control or direction characters, in one line of at most
    ``limit`` characters."""
    text = html.unescape(value or "")
    text = _TAG.sub(" ", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _MARKUP.sub(" ", text)
    text = _CONTROL.sub("", text)
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
