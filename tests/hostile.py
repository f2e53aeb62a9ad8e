"""Hypothesis strategies for hostile input, shared by the boundary tests.

Each boundary test takes a documented, valid input and breaks it in one of the ways a broken
feed, a confused model or a careless user breaks things: wrong types, non-finite and absurd
numbers, numbers that do not fit a float, strings that Python's float() would still accept,
missing and extra keys, deep nesting.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

# Numbers a careless parser turns into something: thousands separators, underscores, words.
NUMBERISH_STRINGS = st.sampled_from([
    "", " ", "nan", "NaN", "inf", "-inf", "Infinity", "1,234.5", "1_000", "0x1F", "1e999", "-1e999",
    "１２３", "12 34", "1.2.3", "--1", "+", ".", "e5", "true", "null", "[]", "{}", "\u0000", "1e-400",
    "9" * 400,
])
ABSURD_NUMBERS = st.sampled_from([
    0, -0.0, -1, -1e-12, 1e-12, 1e308, -1e308, 1e-320, 10**400, -(10**400), 2**63, float("nan"),
    float("inf"), float("-inf"),
])
WRONG_TYPES = st.sampled_from([None, True, False, [], {}, [1], {"a": 1}, [[[]]]])
HOSTILE_SCALARS = st.one_of(NUMBERISH_STRINGS, ABSURD_NUMBERS, WRONG_TYPES, st.text(max_size=12),
                            st.integers(), st.floats())


def deeply_nested(depth: int = 5000) -> str:
    """JSON text nested deeper than any parser's recursion limit."""
    return "[" * depth + "]" * depth


HOSTILE_JSON_TEXTS = st.sampled_from([
    "", "null", "[]", "{}", "42", '"text"', "true", "[{}]", "{" * 3000 + "}" * 3000, deeply_nested(),
    '{"a":' * 2000 + "1" + "}" * 2000, "1" * 500, "{\"x\": " + "9" * 500 + "}", "\xff\xfe", "NaN",
    "<html>oops</html>", '{"a": 1}{"b": 2}', "[" + ",".join(["1"] * 50) + "]",
])


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a node of a JSON value (dict keys and list indexes)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


def replaced(value: Any, path: tuple, new: Any) -> Any:
    """A deep copy of `value` with the node at `path` replaced (the root when path is empty)."""
    if not path:
        return new
    result = copy.deepcopy(value)
    node = result
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = new
    return result


def deleted(value: Any, path: tuple) -> Any:
    """A deep copy of `value` without the node at `path`."""
    if not path:
        return None
    result = copy.deepcopy(value)
    node = result
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return result


@st.composite
def mutations(draw: st.DrawFn, document: Any, scalars: st.SearchStrategy = HOSTILE_SCALARS) -> Any:
    """`document` broken once: a node replaced by a hostile value, deleted, or a key added."""
    path = draw(st.sampled_from(paths(document)))
    kind = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
    if kind == "delete" and path:
        return deleted(document, path)
    if kind == "add":
        parent = path if isinstance(_at(document, path), dict) else path[:-1]
        if isinstance(_at(document, parent), dict):
            key = draw(st.text(min_size=1, max_size=8))
            return replaced(document, (*parent, key), draw(scalars))
    return replaced(document, path, draw(scalars))


def _at(value: Any, path: tuple) -> Any:
    for part in path:
        value = value[part]
    return value
