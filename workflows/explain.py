"""``explain``: the concrete steps one case would run, templates resolved and secrets masked, no browser.

Declared secrets are never read: they show as the mask. A value whose template names a secret case
field (``secret: true``) shows as the mask too, whole, whatever its length and filters; a secret case
value that reaches a template another way (through ``vars``, a ``call``) is masked where it occurs in
the text (values of 3 characters or more: see :func:`~workflows.inputs.mask_text`).

What depends on the page (an extracted value, an element being visible) is not known before the run:
such a value is shown as its template, and a branch that depends on the page shows both ways.

Example output::

    add-case-note v1, case CASE-000201
      1     call sign_in.yaml (user: …)
      1.1     goto portal /login
      1.3     fill {label='Password'} ← ••••••
      5     click {role='link', name='CASE-000201'}
      9     if case.category == 'visit' and not case.attachment → no: skipped
      24    click {test_id='save-note'}  [SUBMITS]
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .errors import CaseDataError, TemplateRenderError, WorkflowError
from .inputs import (
    FIELD_MASK,
    InputField,
    check_case,
    mask_case,
    mask_text,
    secret_fields,
    secret_values,
)
from .locators import alternatives, describe
from .model import LoadedWorkflow
from .secrets import EnvValues
from .steps import (
    Assert,
    Call,
    Choose,
    ConditionArgs,
    Extract,
    Evaluate,
    Fail,
    Finish,
    Fill,
    ForEach,
    Goto,
    If,
    Retry,
    Select,
    Set,
    StepArgs,
    StepBase,
    Upload,
    submits,
)
from .templating import case_fields_in, evaluate, render


class _Masked(Mapping[str, str]):
    """Every declared secret reads as the mask: ``explain`` never resolves a secret."""

    def __init__(self, names: list[str]) -> None:
        self._names = names

    def __getitem__(self, name: str) -> str:
        if name not in self._names:
            raise KeyError(name)
        return FIELD_MASK

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


class _Later(Exception):
    """A value only the run can tell (it comes from the page)."""


def explain(loaded: LoadedWorkflow, case: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> list[str]:
    """The lines ``autoclerk explain`` prints for one typed case.

    Args:
        loaded: the workflow, with the workflows it calls.
        case: the case, already checked against the input schema (:func:`check_case`).
        environ: where env values come from (the process environment by default).
    """
    wf = loaded.definition
    ref = mask_case(wf.input, case).get(wf.reference_field, "") if not wf.part else ""
    lines = [f"{wf.name} v{wf.version}" + (f", case {ref}" if ref else "")]
    values = set(secret_values(wf.input, case))
    _Explainer(environ, wf.input, values).steps(loaded, dict(case), wf.steps, "", 1, lines, {})
    lookup = wf.lookup_steps
    if lookup:
        lines.append("before every attempt, the lookup runs (a record it finds ends the case done, nothing submitted):"
                     if wf.lookup_when == "always" else "before a retry after an uncertain submit, the lookup runs:")
        _Explainer(environ, wf.input, values).steps(loaded, dict(case), lookup, "L", 1, lines, {})
    return lines


class _Explainer:
    """Explains the steps of one workflow; a called workflow gets its own (its own secret fields)."""

    def __init__(self, environ: Mapping[str, str] | None, fields: Mapping[str, InputField], values: set[str]) -> None:
        self.environ = environ
        self.secret = secret_fields(fields)
        self.values = values  # the secret case values met so far, the callers' included: shared, it grows

    def steps(self, loaded: LoadedWorkflow, case: dict[str, Any], steps: list[StepBase], prefix: str, depth: int,
              lines: list[str], known: dict[str, Any]) -> bool:
        """Explain ``steps`` into ``lines``; whether a ``finish`` surely ends them (the steps after it do not run)."""
        wf = loaded.definition
        data = {"case": case, "vars": known, "output": {}, "secrets": _Masked(wf.secrets),
                "env": EnvValues(wf.env, self.environ)}
        for index, step in enumerate(steps, start=1):
            number = f"{prefix}{'.' if prefix else ''}{index}"
            head = f"{'  ' * depth}{number:<6}{'  ' * (depth - 1)}"
            args = step.args
            if isinstance(args, If):
                decided = self.condition(args, data)
                text = f"if {self.describe_condition(args, data)}"
                if decided is None:
                    lines.append(f"{head}{text} → decided on the page; then:")
                    self.steps(loaded, case, args.then, number + ".then", depth + 1, lines, known)
                    if args.else_:
                        lines.append(f"{head}else:")
                        self.steps(loaded, case, args.else_, number + ".else", depth + 1, lines, known)
                elif decided:
                    lines.append(f"{head}{text} → yes:")
                    if self.steps(loaded, case, args.then, number, depth + 1, lines, known):
                        return True
                elif args.else_:
                    lines.append(f"{head}{text} → no: else:")
                    if self.steps(loaded, case, args.else_, number, depth + 1, lines, known):
                        return True
                else:
                    lines.append(f"{head}{text} → no: skipped")
                continue
            if isinstance(args, ForEach):
                try:
                    items = list(self.value(lambda: evaluate(args.items, data)) or [])
                except (_Later, TypeError):
                    lines.append(f"{head}for each {args.as_} in {args.items} (known on the page):")
                    self.steps(loaded, case, args.steps, number, depth + 1, lines, known)
                    continue
                lines.append(f"{head}for each {args.as_} in {args.items}: {len(items)} item(s)")
                for position, item in enumerate(items[: args.max_items], start=1):
                    known[args.as_], known[f"{args.as_}_number"] = item, position
                    if self.steps(loaded, case, args.steps, f"{number}[{position}]", depth + 1, lines, known):
                        return True
                continue
            if isinstance(args, Retry):
                lines.append(f"{head}retry up to {args.attempts} times, {args.delay_ms} ms apart:")
                if self.steps(loaded, case, args.steps, number, depth + 1, lines, known):
                    return True
                continue
            if isinstance(args, Finish):
                outputs = ", ".join(f"output.{name} = {self.text(template, data)!r}" for name, template in args.output.items())
                ending = "the part ends here" if wf.part else "the case ends here, done"
                lines.append(f"{head}finish: {ending}" + (f" ({args.reason})" if args.reason else "")
                             + (f"; {outputs}" if outputs else "") + "; the steps after it do not run")
                return True
            if isinstance(args, Call):
                called = loaded.calls[args.workflow]
                raw: dict[str, str] = {}
                arguments: dict[str, str] = {}
                for name, template in args.with_.items():
                    try:
                        raw[name] = self.rendered(template, data)
                        arguments[name] = self.masked(template, raw[name])
                    except _Later:
                        raw[name] = arguments[name] = f"{template} (known on the page)"
                arguments = mask_case(called.definition.input, arguments)  # the called workflow's secret fields
                shown = ", ".join(f"{k}: {v}" for k, v in arguments.items())
                lines.append(f"{head}call {args.workflow}" + (f" ({shown})" if shown else ""))
                try:
                    inner_case = check_case(called.definition.input, raw, 0)
                except CaseDataError as exc:
                    lines.append(f"{head}  → the call would be refused: {exc.field}: {exc.reason}")
                    continue
                self.values.update(secret_values(called.definition.input, inner_case))
                inner = _Explainer(self.environ, called.definition.input, self.values)
                inner.steps(called, inner_case, called.definition.steps, number, depth + 1, lines, {})
                continue
            if isinstance(args, Set):
                try:
                    value = self.value(lambda: render(args.value, data) if args.value is not None
                                       else evaluate(args.expr or "", data))
                    scope, name = args.to.split(".", 1)
                    if scope == "vars":
                        known[name] = value
                    # an expression names case fields as a template's {{ }} would
                    source = args.value if args.value is not None else "{{ " + (args.expr or "") + " }}"
                    if self.names_secret(source):
                        shown = repr(FIELD_MASK)
                    elif isinstance(value, str):
                        shown = repr(mask_text(value, self.values))
                    else:
                        shown = mask_text(repr(value), self.values)
                except _Later:
                    shown = f"{args.value or args.expr} (known on the page)"
                    known.pop(args.to.split(".", 1)[1], None)
                lines.append(f"{head}set {args.to} = {shown}")
                continue
            if isinstance(args, Extract) or (isinstance(args, Evaluate) and args.to):
                known.pop((args.to or "").split(".", 1)[1], None)
            lines.append(f"{head}{self.describe(step, data)}" + ("  [SUBMITS]" if submits(step) else ""))
        return False

    # -- values -------------------------------------------------------------------------------------
    @staticmethod
    def value(compute: Any) -> Any:
        try:
            return compute()
        except TemplateRenderError as exc:
            raise _Later(str(exc)) from None
        except WorkflowError as exc:  # an env value that is not set
            raise _Later(str(exc)) from None

    def rendered(self, template: str, data: dict[str, Any]) -> str:
        """The template rendered for this case, unmasked (raises ``_Later`` when only the page can tell)."""
        return str(self.value(lambda: render(template, data)))

    def text(self, template: str, data: dict[str, Any]) -> str:
        """The template rendered for this case as ``explain`` shows it: secret case values masked."""
        try:
            return self.masked(template, self.rendered(template, data))
        except _Later:
            return f"{template} (known on the page)"

    def names_secret(self, template: str) -> bool:
        """Whether a template names a secret case field of this workflow."""
        return not self.secret.isdisjoint(case_fields_in(template))

    def masked(self, template: str, rendered: str) -> str:
        # Whole: a filter (``| date``, ``| digits``) can change a value past recognition in the text.
        if self.names_secret(template):
            return FIELD_MASK
        return mask_text(rendered, self.values)

    def condition(self, args: ConditionArgs, data: dict[str, Any]) -> bool | None:
        kind, value = args.condition
        if kind != "expr":
            return None
        try:
            return bool(self.value(lambda: evaluate(value, data)))
        except _Later:
            return None

    def describe_condition(self, args: ConditionArgs, data: dict[str, Any]) -> str:
        kind, value = args.condition
        if kind == "expr":
            return str(value)
        wait_ms = args.within_ms or args.timeout_ms
        when = f" within {wait_ms} ms" if wait_ms else " now (checked once)"
        if kind in ("visible", "hidden"):
            return f"{self.locator(value, data)} is {kind}{when}"
        return f"the page's {kind} matches {self.text(value, data)!r}{when}"

    def locator(self, locator: Any, data: dict[str, Any]) -> str:
        shown = []
        for spec in alternatives(locator):
            if isinstance(spec, str):
                shown.append(self.text(spec, data))
            else:
                rendered = {k: self.text(v, data) if isinstance(v, str) else v
                            for k, v in spec.model_dump(exclude_defaults=True).items()}
                shown.append(describe(type(spec)(**rendered)))
        return " or ".join(shown)

    def describe(self, step: StepBase, data: dict[str, Any]) -> str:
        args: StepArgs = step.args
        verb = step.verb
        if isinstance(args, Goto):
            return f"goto {args.system + ' ' if args.system else ''}{self.text(args.url, data)}"
        if isinstance(args, Fill):
            return f"fill {self.locator(args.locator, data)} ← {self.text(args.value, data)!r}"
        if isinstance(args, Select):
            how = "value" if args.value is not None else "label"
            return f"select {how} {self.text(args.value or args.label or '', data)!r} in {self.locator(args.locator, data)}"
        if isinstance(args, Choose):
            typed = self.text(args.text, data)
            option = self.text(args.option, data) if args.option is not None else typed
            return (f"choose {'exactly ' if args.exact else ''}{option!r} in {self.locator(args.locator, data)}"
                    + (f" (type {typed!r})" if args.option is not None else ""))
        if isinstance(args, Upload):
            files = [args.files] if isinstance(args.files, str) else args.files
            return f"upload {', '.join(self.text(f, data) for f in files)} into {self.locator(args.locator, data)}"
        if isinstance(args, Assert):
            return f"assert {self.describe_condition(args, data)}, else hand back: {self.text(args.message, data)!r}"
        if isinstance(args, Evaluate):
            first = args.script.strip().splitlines()[0]
            shown = ", ".join(f"{name}: {self.text(template, data)!r}" for name, template in args.args.items())
            return (f"evaluate {first[:80]!r}" + (" …" if len(first) > 80 or "\n" in args.script.strip() else "")
                    + (f" with {{{shown}}}" if shown else "") + (f" → {args.to}" if args.to else ""))
        if isinstance(args, Fail):
            return f"fail ({args.kind}, {args.code}): {self.text(args.message, data)!r}"
        parts: list[str] = []
        for name, info in type(args).model_fields.items():
            value = getattr(args, name)
            if value is None or value == info.default or name == "timeout_ms":
                continue
            key = info.alias or name
            if name == "locator":
                parts.insert(0, self.locator(value, data))
            elif isinstance(value, str):
                parts.append(f"{key}={self.text(value, data)!r}")
            else:
                parts.append(f"{key}={value!r}")
        return f"{verb} {' '.join(parts)}".rstrip()
