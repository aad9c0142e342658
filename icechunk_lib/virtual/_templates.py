"""The ``{{ ... }}`` templates of kerchunk reference sets (version 1), without Jinja.

Kerchunk writes ``"templates": {"u": "s3://bucket/file.nc"}`` and URLs like ``"{{u}}"``;
its ``gen`` entries build keys, URLs, offsets and lengths from ranges, as ``"{{(i + 1) *
1000}}"``. fsspec renders both with Jinja2. Here an expression may use names, integer and
string literals, parentheses and ``+ - * / // %``: what reference sets use in practice.
Anything else is refused with a message saying so, never evaluated.
"""

from __future__ import annotations

import ast
import itertools
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = ["TemplateError", "expand_gen", "render"]

_EXPR = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_MAX_GENERATED = 100_000_000
_MAX_TEXT = 65_536
"""The longest text a template expression may make (URLs and keys are far shorter)."""


class TemplateError(ValueError):
    """A template ick cannot render; the message says what (the caller names the key)."""


def render(text: str, names: Mapping[str, object]) -> str:
    """``text`` with every ``{{ expression }}`` replaced by its value."""
    if "{{" not in text:
        return text

    def one(match: re.Match[str]) -> str:
        source = match.group(1).strip()
        try:
            tree = ast.parse(source, mode="eval")
        except SyntaxError:
            raise TemplateError(_unsupported(source)) from None
        value = _eval(tree.body, names, source)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return str(value)

    return _EXPR.sub(one, text)


def _eval(node: ast.expr, names: Mapping[str, object], source: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | str | float):
        if isinstance(node.value, bool):
            raise TemplateError(_unsupported(source))
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in names:
            raise TemplateError(f"template {{{{{source}}}}} names {node.id!r}, not defined")
        return names[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _eval(node.operand, names, source)
        return -value if isinstance(node.op, ast.USub) else +value
    if isinstance(node, ast.BinOp) and (isinstance(node.op, ast.Div) or type(node.op) in _BINARY):
        left = _eval(node.left, names, source)
        right = _eval(node.right, names, source)
        _check_sizes(node.op, left, right, source)
        try:
            if isinstance(node.op, ast.Div):
                return left / right
            op = _BINARY.get(type(node.op))
            if op is not None:
                return op(left, right)
        except (TypeError, ZeroDivisionError) as exc:
            raise TemplateError(f"template {{{{{source}}}}}: {exc}") from None
    raise TemplateError(_unsupported(source))


def _check_sizes(op: ast.operator, left: object, right: object, source: str) -> None:
    """Refuse text an operation would make too long before it is made: ``'a' * 10**9``
    and ``'%999999999d' % 1`` allocate gigabytes (a URL or key is never that long)."""
    if isinstance(op, ast.Mod) and isinstance(left, str):
        raise TemplateError(f"template {{{{{source}}}}}: text formatting with % is not supported")
    if isinstance(op, ast.Mult):
        for text, count in ((left, right), (right, left)):
            if isinstance(text, str) and isinstance(count, int) and len(text) * count > _MAX_TEXT:
                raise TemplateError(
                    f"template {{{{{source}}}}} makes text too long (over {_MAX_TEXT} characters)"
                )


def _unsupported(source: str) -> str:
    return (
        f"template {{{{{source}}}}} is not supported: ick renders names, numbers, strings, "
        "parentheses and + - * / // %, not the rest of Jinja; expand the references with "
        "fsspec or kerchunk first"
    )


def expand_gen(gens: object, templates: Mapping[str, object]) -> Iterator[tuple[str, list[Any]]]:
    """(key, reference) pairs of the ``gen`` entries of a version 1 reference set."""
    if not isinstance(gens, list):
        raise TemplateError(f"'gen' is a list of generators, not {type(gens).__name__}")
    for number, gen in enumerate(gens):
        if not isinstance(gen, dict) or not isinstance(gen.get("dimensions"), dict):
            raise TemplateError(f"gen entry {number} needs 'key', 'url' and 'dimensions'")
        key, url = gen.get("key"), gen.get("url")
        if not isinstance(key, str) or not isinstance(url, str):
            raise TemplateError(f"gen entry {number} needs 'key' and 'url' templates")
        if ("offset" in gen) != ("length" in gen):
            raise TemplateError(f"gen entry {number} has one of 'offset' and 'length': give both")
        ranges = {name: _dimension(number, name, dim) for name, dim in gen["dimensions"].items()}
        total = 1
        for values in ranges.values():
            total *= len(values)
        if total > _MAX_GENERATED:
            raise TemplateError(f"gen entry {number} makes {total} references, too many")
        for combo in itertools.product(*ranges.values()):
            names = {**templates, **dict(zip(ranges, combo, strict=True))}
            ref: list[Any] = [render(url, names)]
            if "offset" in gen:
                ref += [_int(number, gen["offset"], names), _int(number, gen["length"], names)]
            yield render(key, names), ref


def _dimension(number: int, name: str, dim: object) -> list[Any]:
    if isinstance(dim, list):
        return dim
    if isinstance(dim, dict) and isinstance(dim.get("stop"), int):
        start, step = dim.get("start", 0), dim.get("step", 1)
        if isinstance(start, int) and isinstance(step, int) and step != 0:
            values = range(start, dim["stop"], step)
            if len(values) > _MAX_GENERATED:  # before listing it
                raise TemplateError(
                    f"gen entry {number}: dimension {name!r} makes {len(values)} values, too many"
                )
            return list(values)
    raise TemplateError(
        f"gen entry {number}: dimension {name!r} must be a list or {{start, stop, step}} of "
        f"integers, not {dim!r}"
    )


def _int(number: int, template: object, names: Mapping[str, object]) -> int:
    text = render(str(template), names) if not isinstance(template, int) else str(template)
    try:
        return int(text)
    except ValueError:
        raise TemplateError(
            f"gen entry {number}: offset or length {template!r} is {text!r}, not an integer"
        ) from None
