"""RouterOS API query words (`?name=value` or `?=name=value`, `?name`, `?-name`, `?<`, `?>`,
`?#|&!`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from .wire import WireError

Row = Mapping[str, str]
Test = Callable[[Row], bool]


def _compare(left: str, right: str) -> int:
    try:
        a, b = int(left), int(right)
    except ValueError:
        a, b = left, right  # type: ignore[assignment]
    return (a > b) - (a < b)


def _test_for(word: str) -> Test:
    if word.startswith("-"):
        name = word[1:]
        return lambda row: name not in row
    if word[:1] in "<>" and "=" in word:
        name, _, value = word[1:].partition("=")
        sign = -1 if word[0] == "<" else 1
        return lambda row: name in row and _compare(row[name], value) == sign
    if "=" in word:  # `?name=value`, or `?=name=value` (librouteros), which RouterOS treats alike
        name, _, value = word.removeprefix("=").partition("=")
        return lambda row: row.get(name) == value
    return lambda row: word in row


def _apply_operators(stack: list[bool], operators: str) -> None:
    for op in operators:
        if op in "|&":
            if len(stack) < 2:
                raise WireError("query stack underflow")
            right, left = stack.pop(), stack.pop()
            stack.append(left or right if op == "|" else left and right)
        elif op == "!":
            if not stack:
                raise WireError("query stack underflow")
            stack.append(not stack.pop())
        elif op == ".":
            if not stack:
                raise WireError("query stack underflow")
            stack.append(stack[-1])
        else:
            raise WireError(f"unknown query operator {op!r}")


def row_matches(queries: Sequence[str], row: Row) -> bool:
    """True if `row` satisfies every query word (all remaining stack values are ANDed)."""
    stack: list[bool] = []
    for word in queries:
        if word.startswith("#"):
            _apply_operators(stack, word[1:])
        else:
            stack.append(_test_for(word)(row))
    return all(stack)
