"""The grammar of a scores list, for constrained generation in score rescue:
`n` integers in the score range separated by commas, then a closing brace,
e.g. `7, 5}`. Backends use it to allow only tokens that keep the text a
prefix of a valid list."""

from __future__ import annotations

import regex

SCORE_CHARS = frozenset("0123456789, }")


class ScoreGrammar:
    def __init__(self, n_responses: int, score_range: tuple[int, int]) -> None:
        lo, hi = score_range
        if n_responses < 1 or lo > hi or lo < 0:
            raise ValueError(f"bad grammar: n={n_responses}, range={score_range}")
        number = "(?:" + "|".join(str(v) for v in range(hi, lo - 1, -1)) + ")"
        self._pattern = regex.compile(rf" ?{number}(?: ?, ?{number}){{{n_responses - 1}}} ?\}}")
        self.max_chars = n_responses * (len(str(hi)) + 2) + 2

    def allows(self, text: str) -> bool:
        """True when `text` is a valid scores list or can still become one."""
        return self._pattern.fullmatch(text, partial=True) is not None

    def complete(self, text: str) -> bool:
        return self._pattern.fullmatch(text) is not None
