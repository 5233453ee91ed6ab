"""The LLM's answer against its inputs: numbers it cites that contradict what it was given are flagged. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping

from agents.llm.schema import LlmAnswer

# Names a model commonly uses in prose for an input number.
_ALIASES = {
    "rsi": "rsi_14", "rsi14": "rsi_14", "rsi 14": "rsi_14", "rsi(14)": "rsi_14", "price": "close",
    "macd histogram": "macd_hist",
}  # fmt: skip
_NUMBER = r"(-?\d+(?:\.\d+)?)"


def _close(cited: float, actual: float, rel_tol: float) -> bool:
    return abs(cited - actual) <= max(rel_tol * abs(actual), 1e-6)


def contradictions(answer: LlmAnswer, numbers: Mapping[str, float], rel_tol: float = 0.01) -> list[str]:
    """One message per contradiction: a cited value that differs from its input by more than ``rel_tol``, a cited
    name that is not an input, or a ``name <sep> number`` in the rationale that differs from that input."""
    flags: list[str] = []
    for cited in answer.cited_values:
        if cited.name not in numbers:
            flags.append(f"cites {cited.name}={cited.value:g}, which is not one of its inputs")
        elif not _close(cited.value, numbers[cited.name], rel_tol):
            flags.append(f"cites {cited.name}={cited.value:g} but the input is {numbers[cited.name]:g}")
    text = answer.rationale.lower()
    names = {name.lower(): name for name in numbers} | {a: n for a, n in _ALIASES.items() if n in numbers}
    taken: list[range] = []  # longer names first; "rsi 14 of 70" must not also read as "rsi" = 14
    for spoken, name in sorted(names.items(), key=lambda kv: -len(kv[0])):
        pattern = rf"(?<![a-z0-9_]){re.escape(spoken)}(?![a-z0-9_(])\s*(?:is|of|at|=|:)?\s*{_NUMBER}(?!\.?\d|%)"
        for match in re.finditer(pattern, text):
            if any(match.start() in span for span in taken):
                continue
            taken.append(range(match.start(), match.end()))
            value = float(match.group(1))
            if not _close(value, numbers[name], rel_tol):
                flags.append(f"rationale says {spoken} {match.group(1)} but the input {name} is {numbers[name]:g}")
    return sorted(set(flags))
