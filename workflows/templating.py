"""Templates in workflow files: a sandboxed Jinja subset, checked before any case is run.

Templates come only from reviewed workflow files. Case values are passed in as data and are never
compiled, so a case whose address reads ``{{ 7*7 }}`` is typed into the form exactly like that.
The checks at validation time (syntax, no ``_``-names, known roots, known case fields, secrets and
environment names) are the first line of defence; Jinja's immutable sandbox is the second.

Names a template can use: ``case`` (the case's typed fields), ``vars`` (values set or extracted by
earlier steps), ``output`` (what the transaction reports back), ``secrets`` (declared secrets, read at
run time), ``env`` (declared environment values). Filters for the formats legacy forms want are listed
in :data:`FILTERS`.

The date filters (``date``, ``day``, ``month``, ``year``, ``add_days``) need a date. A ``type: date`` case
field is one, however its rows wrote it (see the field's ``format``); a text written another way, such as
a date read from a page, is turned into one with ``parse_date``. ``validate`` refuses a date filter given
a case field of another type, since every case would fail on it at run time.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from collections.abc import Callable, Collection, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Annotated, Any, TypeVar

import jinja2
from jinja2 import nodes
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BeforeValidator

from .errors import TemplateRenderError
from .inputs import InputField, date_example, date_format_problems, read_date

T = TypeVar("T")

ROOTS = ("case", "vars", "secrets", "output", "env")


class TemplateMarker:
    """Metadata marking a string field as a template (checked at validation, rendered per case)."""


class ExpressionMarker:
    """Metadata marking a string field as an expression (``case.amount > 100``): no braces, any value."""


def _number_as_text(value: Any) -> Any:
    """YAML reads ``value: 42`` as a number; a template field takes it as the text ``42``."""
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return str(value)
    return value


def _literal_as_expression(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _number_as_text(value)


Template = Annotated[str, TemplateMarker(), BeforeValidator(_number_as_text)]
"""A string rendered per case: ``"{{ case.postcode | upper }}"``."""

Expression = Annotated[str, ExpressionMarker(), BeforeValidator(_literal_as_expression)]
"""A Jinja expression evaluated per case to a value of any type: ``case.dependants``, ``vars.rows | length > 0``."""


# -- filters ---------------------------------------------------------------------------------------------
class FilterError(TemplateRenderError):
    """A filter got a value it cannot format."""


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.strip()) if "T" in value else dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise FilterError("the date filters need a date such as 2026-03-01; read a date written another way with "
                      "parse_date first")


def _parse_date(value: Any, *formats: str) -> dt.date:
    """``{{ vars.found | parse_date('%m/%d/%Y') | date('%d/%m/%Y') }}``: the date in a text written in a \
strftime format (several: tried in order, after ISO), for the other date filters; a `type: date` field is a date already."""
    # The docstring is one line (continued with a backslash): the reference shows it as a table row.
    if isinstance(value, dt.date):
        return value
    if not formats or not all(isinstance(fmt, str) for fmt in formats):
        raise FilterError("parse_date needs the format its text is written in, as in parse_date('%d/%m/%Y')")
    problems = _format_problems(formats)
    if problems:
        raise FilterError(f"parse_date: {problems[0]}")
    found = read_date(str(value), formats) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    if found is None:
        raise FilterError(f"parse_date needs a date like {date_example(formats)}")
    return found


@lru_cache(maxsize=256)
def _format_problems(formats: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(date_format_problems(formats))


def _date(value: Any, format: str = "%d/%m/%Y") -> str:  # noqa: A002 - Jinja keyword name
    """``{{ case.effective_date | date('%d.%m.%Y') }}``: a date in any strftime format (default dd/mm/yyyy)."""
    if "%" not in format and format:
        raise FilterError("the date format needs strftime codes such as %d/%m/%Y")
    return _as_date(value).strftime(format)


def _add_days(value: Any, days: int) -> str:
    """``{{ case.received | add_days(30) }}``: the ISO date ``days`` later (negative: earlier)."""
    try:
        return (_as_date(value) + dt.timedelta(days=int(days))).isoformat()
    except OverflowError:
        raise FilterError("add_days went outside the calendar") from None


def _number(value: Any, decimals: int = 2, thousands: str = "", point: str = ".") -> str:
    """``{{ case.amount | number(2, thousands='.', point=',') }}`` → ``1.234,50``."""
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise FilterError("the number filter needs a number") from None
    if not number.is_finite() or not 0 <= int(decimals) <= 10:
        raise FilterError("the number filter needs a finite number and 0–10 decimals")
    text = f"{number:,.{int(decimals)}f}"
    return text.replace(",", "\0").replace(".", point).replace("\0", thousands)


def _pad(value: Any, width: int, char: str = "0", side: str = "left") -> str:
    """``{{ case.office | pad(5) }}`` → ``00042``; ``pad(8, ' ', 'right')`` pads on the right."""
    text, width = str(value), int(width)
    if len(char) != 1 or side not in ("left", "right") or not 0 <= width <= 1000:
        raise FilterError("pad needs a width up to 1000, one padding character and side 'left' or 'right'")
    return text.rjust(width, char) if side == "left" else text.ljust(width, char)


def _digits(value: Any) -> str:
    """``{{ case.phone | digits }}``: only the digits (``+44 (0)20 7946`` → ``4402079460``)."""
    return "".join(c for c in str(value) if c.isdigit())


def _part(name: str) -> Callable[[Any], int]:
    def part(value: Any) -> int:
        return int(getattr(_as_date(value), name))

    part.__doc__ = f"``{{{{ case.date | {name} }}}}``: the {name} of a date, as a number."
    return part


FILTERS: dict[str, Callable[..., Any]] = {
    "date": _date,
    "parse_date": _parse_date,
    "day": _part("day"),
    "month": _part("month"),
    "year": _part("year"),
    "add_days": _add_days,
    "number": _number,
    "pad": _pad,
    "digits": _digits,
}
"""Filters added to Jinja's built-in ones (``upper``, ``lower``, ``title``, ``trim``, ``replace``,
``truncate``, ``default``, ``length``, ``join``, …); slicing is written ``case.name[:20]``."""


MAX_RESULT = 100_000
"""The longest text or list a template may build with ``*``, and the largest power with ``**``."""


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, plus bounds on ``*`` and ``**`` so a template cannot exhaust memory or CPU."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, (int, float)) and abs(right) > 64:
                raise FilterError("a power in a template may not exceed 64")
            return left ** right
        for sized, count in ((left, right), (right, left)):
            if isinstance(sized, (str, list, tuple)) and isinstance(count, int) and len(sized) * count > MAX_RESULT:
                raise FilterError(f"a template may not build text longer than {MAX_RESULT} characters")
        return left * right

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - Jinja's signature
        # ``'x'.ljust(10**9)``, ``'x' | center(10**9)``: no method or filter gets a size beyond the bound.
        if _too_big(args) or _too_big(kwargs.values()):
            raise FilterError(f"a number passed to a function in a template may not exceed {MAX_RESULT}")
        return super().call(__context, __obj, *args, **kwargs)


def _too_big(values: Any) -> bool:
    return any(isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_RESULT for v in values)


def _bounded(function: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that refuses size arguments beyond the bound (``'x' | center(10**9)``)."""

    @functools.wraps(function)  # keeps Jinja's pass_context / pass_environment marks
    def bounded(*args: Any, **kwargs: Any) -> Any:
        if _too_big(args[1:]) or _too_big(kwargs.values()):
            raise FilterError(f"a number passed to a filter in a template may not exceed {MAX_RESULT}")
        return function(*args, **kwargs)

    return bounded


def _environment() -> ImmutableSandboxedEnvironment:
    env = _BoundedSandbox(undefined=jinja2.StrictUndefined, autoescape=False)
    env.globals.clear()  # no range(), lipsum(), cycler(), …: data in, text out
    env.filters.update(FILTERS)
    env.filters = {name: _bounded(function) for name, function in env.filters.items()}
    return env


_ENV = _environment()


def is_template(text: str) -> bool:
    """Whether a string holds template syntax at all (plain strings skip rendering)."""
    return "{{" in text or "{%" in text or "{#" in text


# -- checks ----------------------------------------------------------------------------------------------
def check_template(
    text: str, case_fields: Mapping[str, InputField] | Collection[str], secret_names: set[str],
    env_names: set[str] = frozenset(),  # type: ignore[assignment]
) -> list[str]:
    """Return the problems of one template (empty when it is fine).

    Args:
        text: the template source from a workflow file.
        case_fields: the workflow's input fields: the schema itself (``{name: InputField}``), so that what a
            filter is given is checked against the field's type (``case.when | date`` needs a date field),
            or only their names.
        secret_names: the names of the secrets the workflow declares.
        env_names: the names of the environment values the workflow declares.

    Example::

        check_template("{{ case.when | date('%d/%m/%Y') }}", {"when": InputField(type="string")}, set())
        == ["the date filter needs a date, and case.when is a string field; declare it 'type: date' "
            "(with 'format: …' if its dates are not ISO) or read it with parse_date('…')"]
    """
    try:
        tree = _ENV.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        return [f"template syntax error: {exc.message}"]
    return _check_tree(tree, case_fields, secret_names, env_names)


def check_expression(
    text: str, case_fields: Mapping[str, InputField] | Collection[str], secret_names: set[str],
    env_names: set[str] = frozenset(),  # type: ignore[assignment]
) -> list[str]:
    """Like :func:`check_template`, for an expression (``case.amount > 100``, no braces)."""
    if is_template(text):
        return ["an expression is written without {{ }} (e.g. case.amount > 100)"]
    try:
        parser = Parser(_ENV, text, state="variable")
        tree = parser.parse_expression()
        if not parser.stream.eos:
            return ["expression syntax error: unexpected text after the expression"]
    except jinja2.TemplateSyntaxError as exc:
        return [f"expression syntax error: {exc.message}"]
    return _check_tree(tree, case_fields, secret_names, env_names)


def _check_tree(tree: nodes.Node, case_fields: Mapping[str, InputField] | Collection[str], secret_names: set[str],
                env_names: set[str]) -> list[str]:
    problems: list[str] = []
    fields = case_fields if isinstance(case_fields, Mapping) else {}
    kinds = (nodes.Getattr, nodes.Getitem, nodes.Name, nodes.Filter, nodes.Test)
    # find_all skips the node it starts from, and an expression's root is often the node to check (case.x | f)
    for node in itertools.chain([tree] if isinstance(tree, kinds) else [], tree.find_all(kinds)):
        if isinstance(node, (nodes.Filter, nodes.Test)):
            known = _ENV.filters if isinstance(node, nodes.Filter) else _ENV.tests
            if node.name not in known:
                kind = "filter" if isinstance(node, nodes.Filter) else "test"
                problems.append(f"unknown {kind} '{node.name}'")
            elif isinstance(node, nodes.Filter):
                problems += _filter_problems(node, fields)
            continue
        if isinstance(node, nodes.Name):
            if node.ctx == "load" and node.name not in ROOTS:
                problems.append(f"unknown name '{node.name}' in template; expected one of {', '.join(ROOTS)}")
            elif node.ctx != "load":
                problems.append("templates cannot assign names; use a 'set' step")
            continue
        assert isinstance(node, (nodes.Getattr, nodes.Getitem))
        attr = node.attr if isinstance(node, nodes.Getattr) else _const(node.arg)
        if isinstance(attr, str) and attr.startswith("_"):
            problems.append(f"access to '{attr}' is not allowed in templates (names starting with _ are private)")
            continue
        if isinstance(node.node, nodes.Name) and isinstance(attr, str):
            root = node.node.name
            if root == "case" and attr not in case_fields:
                problems.append(f"the template uses case.{attr}, but the input schema has no field '{attr}'")
            if root == "secrets" and attr not in secret_names:
                problems.append(f"the template uses secrets.{attr}, but the workflow declares no secret '{attr}'")
            if root == "env" and attr not in env_names:
                problems.append(f"the template uses env.{attr}, but the workflow declares no env value '{attr}'")
    return problems


_DATE_FILTERS = frozenset({"date", "day", "month", "year", "add_days"})


def _filter_problems(node: nodes.Filter, fields: Mapping[str, InputField]) -> list[str]:
    """What is wrong with the arguments of one filter, as far as the file shows: the formats written in it,
    and a case field of another type given to a date filter (``vars`` and ``output`` are known only at run
    time, so they are not checked)."""
    problems: list[str] = []
    if node.name == "parse_date":
        formats = [_const(arg) for arg in node.args]
        if not formats:
            problems.append("parse_date needs the format its text is written in, as in parse_date('%d/%m/%Y')")
        elif all(isinstance(fmt, str) for fmt in formats):
            problems += [f"parse_date: {problem}" for problem in date_format_problems(formats)]
    if node.name == "date":
        fmt = _const(node.args[0]) if node.args else next((_const(kw.value) for kw in node.kwargs if kw.key == "format"),
                                                          None)
        if isinstance(fmt, str) and fmt and "%" not in fmt:
            problems.append("the date format needs strftime codes such as %d/%m/%Y")
    name = _case_field(node.node)
    field = fields.get(name) if name is not None else None
    if node.name in _DATE_FILTERS and field is not None and field.type != "date":
        article = "an" if field.type[0] in "aeiou" else "a"
        problems.append(f"the {node.name} filter needs a date, and case.{name} is {article} {field.type} field; declare "
                        "it 'type: date' (with 'format: …' if its dates are not ISO) or read it with parse_date('…')")
    return problems


def _case_field(node: nodes.Node | None) -> str | None:
    """The name of the case field an expression is, when it is one (``case.when``, ``case['when']``)."""
    if isinstance(node, (nodes.Getattr, nodes.Getitem)) and isinstance(node.node, nodes.Name) and node.node.name == "case":
        name = node.attr if isinstance(node, nodes.Getattr) else _const(node.arg)
        return name if isinstance(name, str) else None
    return None


def _const(node: nodes.Node) -> Any:
    return node.value if isinstance(node, nodes.Const) else None


# -- rendering -------------------------------------------------------------------------------------------
@lru_cache(maxsize=4096)
def _compiled(text: str) -> jinja2.Template:
    return _ENV.from_string(text)


@lru_cache(maxsize=1024)
def _compiled_expression(text: str) -> Any:
    return _ENV.compile_expression(text, undefined_to_none=False)


def render(text: str, context: Mapping[str, Any]) -> str:
    """Render one template with ``case``, ``vars``, ``secrets``, ``output`` and ``env`` in ``context``.

    Raises:
        TemplateRenderError: an undefined value, a filter given the wrong kind of value, or a sandbox
            violation; the message names the cause, never a value.
    """
    if not is_template(text):
        return text
    return _guarded(lambda: _compiled(text).render(**context))


def evaluate(expression: str, context: Mapping[str, Any]) -> Any:
    """Evaluate one expression to a value (a list, a number, a boolean, text).

    Raises:
        TemplateRenderError: as :func:`render`.
    """
    value = _guarded(lambda: _compiled_expression(expression)(**context))
    if isinstance(value, jinja2.Undefined):
        raise TemplateRenderError("expression value missing")
    return value


def _guarded(call: Callable[[], T]) -> T:
    try:
        return call()
    except TemplateRenderError:
        raise
    except jinja2.UndefinedError as exc:
        raise TemplateRenderError(f"template value missing: {exc.message}") from None
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateRenderError(f"template refused by the sandbox: {exc}") from None
    except jinja2.TemplateError as exc:
        raise TemplateRenderError(f"template failed: {type(exc).__name__}") from None
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError, RecursionError, MemoryError) as exc:
        # Data of the wrong kind for an operation (``case.name + 1``); the case, not the bot, is wrong.
        raise TemplateRenderError(f"template failed on this case's data ({type(exc).__name__})") from None


def secret_names_in(text: str) -> Iterator[str]:
    """The secret names a template refers to (``secrets.NAME``)."""
    if not is_template(text):
        return
    for node in _ENV.parse(text).find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name == "secrets":
            yield node.attr


def case_fields_in(text: str) -> Iterator[str]:
    """The case field names a template refers to (``case.NAME`` and ``case['NAME']``), each once, in order.

    A name computed at run time (``case[vars.key]``) cannot be told from the text and is not listed.

    Example::

        list(case_fields_in("{{ case.city | upper }} {{ case['postcode'] }}")) == ["city", "postcode"]
    """
    if not is_template(text):
        return
    seen: set[str] = set()
    for node in _ENV.parse(text).find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, (nodes.Getattr, nodes.Getitem))
        if not (isinstance(node.node, nodes.Name) and node.node.name == "case"):
            continue
        name = node.attr if isinstance(node, nodes.Getattr) else _const(node.arg)
        if isinstance(name, str) and name not in seen:
            seen.add(name)
            yield name
