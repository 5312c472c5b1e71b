"""Hypothesis strategies for near misses of valid strings (issue 16).

A validator that matches with ``^...$`` takes ``"b00t0004\\n"``; one that uses
``str.isdigit`` takes ``"٣"``. :func:`near_miss` puts one intruder (whitespace, a control
character, a Unicode look-alike) before, after or inside a valid value, or in place of
one of its characters; every validator must refuse the result.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
INTRUDERS = (
    "\n",
    "\r",
    "\r\n",
    "\0",
    " ",
    "\t",
    "\x0b",
    "\x0c",
    "\x7f",
    "\x85",
    "\u00a0",
    "\u2028",
    "\u2029",
    "\u200b",
    "\ufeff",
    "/",
    ".",
    "+",
    "#",
    "\\",
    # look-alikes of id characters: Cyrillic a, Greek omicron, fullwidth c and 7, Arabic-Indic 3,
    # superscript 2, a hyphen and a fullwidth low line that are not '-' and '_'
    "\u0430",
    "\u03bf",
    "\uff43",
    "\uff17",
    "\u0663",
    "\u00b2",
    "\u2010",
    "\uff3f",
)
DIGIT_INTRUDERS = ("\n", " ", "\0", "+", "-", "\u0663", "\u00b2", "\uff17", "\U0001d7ce", "\u2167", "x")
"""Near misses of ASCII digits: ``str.isdigit`` takes the Arabic-Indic 3, superscript 2, fullwidth 7, math 0."""
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

valid_ids = st.text(alphabet=ID_ALPHABET, min_size=1, max_size=31)


@st.composite
def near_miss(
    draw: st.DrawFn,
    valid: st.SearchStrategy[str] = valid_ids,
    intruders: tuple[str, ...] = INTRUDERS,
) -> str:
    """A valid value with one intruder before, after or inside it (or replacing one character)."""
    text = draw(valid)
    bad = draw(st.sampled_from(intruders))
    where = draw(st.sampled_from(("before", "after", "inside", "replace")))
    i = draw(st.integers(0, len(text) - 1))
    if where == "before":
        return bad + text
    if where == "after":
        return text + bad
    if where == "inside":
        return text[:i] + bad + text[i:]
    return text[:i] + bad + text[i + 1 :]
