"""Executing the page steps on a Playwright page, one async function per verb."""

from __future__ import annotations

import asyncio
import fnmatch
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urljoin, urlsplit

from playwright.async_api import Dialog as PwDialog
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator as PwLocator
from playwright.async_api import TimeoutError as PlaywrightTimeout

from workflows import FIELD_MASK, alternatives
from workflows.steps import (
    Check,
    Choose,
    Click,
    Dialog,
    Evaluate,
    Extract,
    Fill,
    Goto,
    Press,
    Screenshot,
    Select,
    Uncheck,
    Upload,
    WaitFor,
)

from .context import StepContext, wait_until
from .errors import ApplicationError, BusinessException, StepTimeout, TargetServerError

_TABLE_JS = """table => {
  const clean = s => s.replace(/\\s+/g, ' ').trim();
  const key = (s, i) => clean(s).toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '') || `column_${i + 1}`;
  let headers = Array.from(table.querySelectorAll('thead th')).map((th, i) => key(th.innerText, i));
  let rows = Array.from(table.querySelectorAll('tbody tr'));
  if (!rows.length) rows = Array.from(table.querySelectorAll('tr')).filter(tr => tr.querySelector('td'));
  if (!headers.length) {
    const first = table.querySelector('tr');
    if (first && !first.querySelector('td')) headers = Array.from(first.querySelectorAll('th')).map((th, i) => key(th.innerText, i));
  }
  return rows.map(tr => {
    const out = {};
    Array.from(tr.querySelectorAll('td, th')).forEach((cell, i) => { out[headers[i] || `column_${i + 1}`] = clean(cell.innerText); });
    return out;
  });
}"""


async def goto(ctx: StepContext, args: Goto) -> None:
    systems = ctx.systems
    name = args.system or (next(iter(systems)) if len(systems) == 1 else None)
    base = ctx.system_urls.get(name) if name else None
    if not base:
        raise ApplicationError(f"no base URL is configured for system '{name}'", step=ctx.step_path)
    url = urljoin(base.rstrip("/") + "/", ctx.render(args.url).lstrip("/"))
    if urlsplit(url)[:2] != urlsplit(base)[:2]:  # a rendered value may not lead the bot off its system
        raise BusinessException(f"the page to open is not on system '{name}'", code="off_system_url",
                                step=ctx.step_path)
    timeout_ms = args.timeout_ms or ctx.navigation_timeout_ms
    try:
        response = await ctx.race(ctx.page.goto(url, timeout=timeout_ms, wait_until="domcontentloaded"))
    except PlaywrightTimeout:
        raise StepTimeout(f"navigation did not finish within {timeout_ms} ms", step=ctx.step_path) from None
    if response is not None and response.status >= 500:
        raise TargetServerError(f"the target system answered {response.status}", step=ctx.step_path,
                                url=response.url, method="GET", began_in=ctx.signals.step)


async def fill(ctx: StepContext, args: Fill) -> None:
    element = await ctx.element(args.locator, ctx.timeout(args))
    if ctx.names_secret(args.value):
        ctx.secret_locators.append(element)
    await element.fill(ctx.render(args.value), timeout=ctx.timeout(args))


async def select(ctx: StepContext, args: Select) -> None:
    element = await ctx.element(args.locator, ctx.timeout(args))
    kind = "value" if args.value is not None else "label"
    if ctx.names_secret(args.value if args.value is not None else args.label or ""):
        ctx.secret_locators.append(element)  # the list shows the option chosen
    try:
        if args.value is not None:
            await element.select_option(value=ctx.render(args.value), timeout=ctx.timeout(args))
        else:
            await element.select_option(label=ctx.render(args.label or ""), timeout=ctx.timeout(args))
    except PlaywrightTimeout:
        raise BusinessException(f"the list has no option with this {kind}", code="no_such_option",
                                step=ctx.step_path) from None


_SETTLE_S = 1.0
"""How long a list of options that has shown must stay unchanged, without the option, before ``choose``
stops waiting for it (a widget's search answers within this; one that keeps a loading option waits on)."""
_POLL_S = 0.05
_TEXT_BOX_JS = """e => !!e && !e.disabled && !e.readOnly && (e.isContentEditable || e instanceof HTMLTextAreaElement
  || (e instanceof HTMLInputElement
      && !['button', 'checkbox', 'color', 'file', 'hidden', 'image', 'radio', 'range', 'reset', 'submit'].includes(e.type)))"""
_SUGGESTIONS_JS = """e => e instanceof HTMLInputElement && e.list
  ? Array.from(e.list.options).filter(o => !o.disabled).map(o => [o.value, o.label]) : null"""
_SHOWS_JS = "e => (e instanceof HTMLInputElement || e instanceof HTMLTextAreaElement ? e.value : e.innerText) || ''"
_STAND_INS = ("ancestor::*[@role='combobox'][1]", "following-sibling::*[1]/descendant-or-self::*[@role='combobox'][1]")
"""Where a widget library puts its own combobox for a ``<select>`` it replaces: around it, or right after it."""


class _Offer(NamedTuple):
    """What the widget offers at one moment: the option to pick (when exactly one fits), how many match,
    whether a list shows at all, whether it is still loading, and a fingerprint to see it change."""

    pick: Any
    matches: int
    showing: bool
    loading: bool
    state: Any


async def choose(ctx: StepContext, args: Choose) -> None:
    timeout_ms = ctx.timeout(args)
    typed = ctx.render(args.text)
    option_template = args.option if args.option is not None else args.text
    wanted = " ".join(ctx.render(option_template).split())
    # Messages name what was typed and looked for, as the case gave it, unless it is a secret.
    said_typed = repr(FIELD_MASK if ctx.names_secret(args.text) else typed)
    said_option = repr(FIELD_MASK if ctx.names_secret(option_template) else wanted)

    def refused(matches: int) -> BusinessException:
        if matches:
            return BusinessException(f"{matches} options match {said_option} after typing {said_typed}, so none was "
                                     "chosen", code="ambiguous_option", step=ctx.step_path)
        return BusinessException(f"no option {said_option} was offered after typing {said_typed}",
                                 code="no_such_option", step=ctx.step_path)

    if not wanted:
        raise BusinessException("the case gives no option to choose", code="nothing_to_choose", step=ctx.step_path)
    secret = ctx.names_secret(args.text) or ctx.names_secret(option_template)
    element = await ctx.element(args.locator, timeout_ms)
    if secret:
        ctx.secret_locators.append(element)
    if await element.evaluate(_SUGGESTIONS_JS) is not None:  # a <datalist>: its popup cannot be clicked
        await element.fill("", timeout=timeout_ms)
        await ctx.race(element.press_sequentially(typed, timeout=timeout_ms))
        offer = await ctx.race(_wait_for_offer(ctx, lambda: _suggested(element, wanted, args.exact), timeout_ms))
        if offer.pick is None:
            raise refused(offer.matches)
        await element.fill(offer.pick, timeout=timeout_ms)
        if await element.input_value() != offer.pick:
            raise ApplicationError("the field did not keep the option chosen from its list", step=ctx.step_path)
        return
    target = await _widget_of(ctx, element, args)
    if secret and target is not element:
        ctx.secret_locators.append(target)
    await ctx.race(target.click(timeout=timeout_ms))
    try:
        await ctx.race(ctx.page.wait_for_function(f"() => ({_TEXT_BOX_JS})(document.activeElement)", timeout=timeout_ms))
    except PlaywrightTimeout:
        raise StepTimeout(f"no text box took the focus after a click on {ctx.described(alternatives(args.locator))} "
                          f"within {timeout_ms} ms", step=ctx.step_path) from None
    # The box typed into and the list it opens show the typed text until the option is taken: masked meanwhile.
    showing_typed = [ctx.page.locator(":focus"), ctx.page.get_by_role("listbox")] if secret else []
    ctx.secret_locators.extend(showing_typed)
    await ctx.race(ctx.page.keyboard.press("ControlOrMeta+A"))  # typing replaces what the box held
    await ctx.race(ctx.page.keyboard.type(typed))
    offer = await ctx.race(_wait_for_offer(ctx, lambda: _offered(ctx, wanted, args.exact), timeout_ms))
    if offer.pick is None:
        if offer.matches or offer.showing:
            raise refused(offer.matches)
        raise StepTimeout(f"no list of options showed after typing {said_typed} within {timeout_ms} ms",
                          step=ctx.step_path)
    name = " ".join((await offer.pick.inner_text()).split()).lower()
    shown_before = name in " ".join((await target.evaluate(_SHOWS_JS)).split()).lower()
    await ctx.race(offer.pick.click(timeout=timeout_ms))
    if not await ctx.race(_taken(target, offer.pick, name, shown_before, timeout_ms)):
        raise StepTimeout(f"the widget did not take the option clicked within {timeout_ms} ms (its list still shows "
                          "it)", step=ctx.step_path)
    for locator in showing_typed:
        ctx.secret_locators.remove(locator)


async def _widget_of(ctx: StepContext, element: PwLocator, args: Choose) -> PwLocator:
    """The element to click: ``element`` itself, or for a ``<select>`` a widget library has replaced, the
    library's own combobox (the select stays in the page, hidden, to be sent with the form)."""
    if not await element.evaluate("e => e instanceof HTMLSelectElement"):
        return element
    for place in _STAND_INS:
        widget = element.locator(f"xpath={place}")
        if await widget.count():
            return widget.first
    raise ApplicationError(f"{ctx.described(alternatives(args.locator))} is a plain list, not a type-and-pick widget: "
                           "use 'select' for it", step=ctx.step_path)


async def _wait_for_offer(ctx: StepContext, look: Callable[[], Awaitable[_Offer]], timeout_ms: int) -> _Offer:
    """Look until one option fits, the list has settled without one, or the time is up; the system's message wins."""
    clock = asyncio.get_running_loop().time
    deadline, settled_since, last = clock() + timeout_ms / 1000, clock(), None
    while True:
        await ctx.raise_business_error()
        offer = await look()
        now = clock()
        if offer.pick is not None:
            return offer
        if offer.state != last:
            last, settled_since = offer.state, now
        if (offer.showing and not offer.loading and now - settled_since >= _SETTLE_S) or now >= deadline:
            return offer
        await asyncio.sleep(_POLL_S)


async def _offered(ctx: StepContext, wanted: str, exact: bool) -> _Offer:
    """The page's showing ``role=option`` elements (a widget's list, wherever the library puts it)."""
    page = ctx.page
    matching = page.get_by_role("option", name=wanted, exact=exact, disabled=False).filter(visible=True)
    matches = await matching.count()
    pick = matching.first if matches == 1 else None
    if matches > 1 and not exact:  # "Jane Smith" is meant among "Jane Smith" and "Jane Smithers"
        whole = page.get_by_role("option", name=re.compile(rf"^\s*{re.escape(wanted)}\s*$", re.IGNORECASE),
                                 disabled=False).filter(visible=True)
        pick = whole.first if await whole.count() == 1 else None
    shown = await page.get_by_role("option").filter(visible=True).all_inner_texts()
    loading = await page.get_by_role("option", disabled=True).filter(visible=True).count() > 0
    lists = await page.get_by_role("listbox").filter(visible=True).count()
    return _Offer(pick, matches, bool(shown) or lists > 0, loading, (tuple(shown), lists))


async def _suggested(element: PwLocator, wanted: str, exact: bool) -> _Offer:
    """The options of an ``<input list=…>``'s ``<datalist>``, by value or label; the pick is the option's value."""
    entries = [tuple(" ".join(part.split()) for part in entry) for entry in await element.evaluate(_SUGGESTIONS_JS) or []]
    fits = [value for value, label in entries
            if any((name == wanted) if exact else (wanted.lower() in name.lower()) for name in (value, label) if name)]
    pick = fits[0] if len(fits) == 1 else None
    if len(fits) > 1 and not exact:
        whole = {value for value, label in entries if wanted.lower() in (value.lower(), label.lower())}
        pick = whole.pop() if len(whole) == 1 else None
    return _Offer(pick, len(fits), True, False, tuple(entries))


async def _taken(target: PwLocator, option: PwLocator, name: str, shown_before: bool, timeout_ms: int) -> bool:
    """Whether the widget took the option clicked: its list no longer shows it, or the widget now shows it."""
    clock = asyncio.get_running_loop().time
    deadline = clock() + timeout_ms / 1000
    while True:
        if not await option.is_visible():
            return True
        if not shown_before and name in " ".join((await target.evaluate(_SHOWS_JS)).split()).lower():
            return True
        if clock() >= deadline:
            return False
        await asyncio.sleep(_POLL_S)


async def check(ctx: StepContext, args: Check) -> None:
    await (await ctx.element(args.locator, ctx.timeout(args))).check(timeout=ctx.timeout(args))


async def uncheck(ctx: StepContext, args: Uncheck) -> None:
    await (await ctx.element(args.locator, ctx.timeout(args))).uncheck(timeout=ctx.timeout(args))


async def click(ctx: StepContext, args: Click) -> None:
    element = await ctx.element(args.locator, ctx.timeout(args))
    if args.submit:
        await ctx.before_effect()
    await ctx.race(element.click(timeout=ctx.timeout(args)))


async def press(ctx: StepContext, args: Press) -> None:
    if args.locator is None:
        if args.submit:
            await ctx.before_effect()
        await ctx.race(ctx.page.keyboard.press(args.key))
        return
    element = await ctx.element(args.locator, ctx.timeout(args))
    if args.submit:
        await ctx.before_effect()
    await ctx.race(element.press(args.key, timeout=ctx.timeout(args)))


async def upload(ctx: StepContext, args: Upload) -> None:
    if ctx.files_dir is None:
        raise ApplicationError("no files folder is configured for uploads (AUTOCLERK_FILES_DIR)", step=ctx.step_path)
    root = ctx.files_dir.resolve()
    paths: list[Path] = []
    templates = [args.files] if isinstance(args.files, str) else args.files
    for template in templates:
        path = (root / ctx.render(template)).resolve()
        if not path.is_relative_to(root):
            raise BusinessException("the case names a file outside the files folder", code="file_outside_folder",
                                    step=ctx.step_path)
        if not path.is_file():
            raise BusinessException("the case names a file that is not in the files folder", code="file_missing",
                                    step=ctx.step_path)
        paths.append(path)
    element = await ctx.element(args.locator, ctx.timeout(args), state="attached")
    if any(ctx.names_secret(template) for template in templates):
        ctx.secret_locators.append(element)  # a file input shows the names of the files chosen
    await element.set_input_files(paths, timeout=ctx.timeout(args))


async def wait_for(ctx: StepContext, args: WaitFor) -> None:
    timeout_ms = ctx.timeout(args)
    try:
        if args.locator is not None:
            await ctx.element(args.locator, timeout_ms, state=args.state)
        elif args.url is not None:
            pattern = ctx.render(args.url)
            await ctx.race_business_error(ctx.page.wait_for_url(lambda url: fnmatch.fnmatchcase(url, pattern),
                                                                timeout=timeout_ms, wait_until="commit"), timeout_ms)
        elif args.text is not None:
            await ctx.race_business_error(wait_until(ctx.page.get_by_text(ctx.render(args.text)), "visible", timeout_ms),
                                          timeout_ms)
        else:
            await ctx.race_business_error(ctx.page.wait_for_load_state("networkidle", timeout=timeout_ms), timeout_ms)
    except PlaywrightTimeout:
        await ctx.raise_business_error()
        if args.url is not None:
            what = f"the address did not match {_rendered(ctx, args.url)!r} (the page is at {ctx.page.url})"
        elif args.text is not None:
            what = f"the text {_rendered(ctx, args.text)!r} did not show"
        else:
            what = "the network did not go quiet"
        raise StepTimeout(f"{what} within {timeout_ms} ms", step=ctx.step_path) from None


def _rendered(ctx: StepContext, template: str) -> str:
    try:
        return ctx.render(template)
    except Exception:  # noqa: BLE001 - named as written when it cannot render here
        return template


async def extract(ctx: StepContext, args: Extract) -> None:
    scope, name = args.to.split(".", 1)
    target = ctx.output if scope == "output" else ctx.vars
    reads = args.reads
    if reads == "count" or args.optional:
        found = [ctx.locate(spec) for spec in ([args.locator] if not isinstance(args.locator, list) else args.locator)]
        counts = [await locator.count() for locator in found]
        if reads == "count":
            target[name] = max(counts)
            return
        if not any(counts):
            return  # optional and absent: leave the name unset
    element = await ctx.element(args.locator, ctx.timeout(args), state="attached" if reads == "attribute" else "visible")
    value: Any
    if reads == "attribute":
        value = await element.get_attribute(args.attribute or "")
    elif reads == "table":
        value = await element.evaluate(_TABLE_JS)
    elif reads == "list":
        value = [" ".join(text.split()) for text in await ctx.locate(_first_spec(args)).all_inner_texts()]
    elif reads == "value" or (reads == "auto" and await element.evaluate(
            "e => e instanceof HTMLInputElement || e instanceof HTMLTextAreaElement || e instanceof HTMLSelectElement")):
        value = await element.input_value()
    else:
        value = " ".join((await element.inner_text()).split())
    target[name] = value


async def evaluate(ctx: StepContext, args: Evaluate) -> None:
    arguments = {name: ctx.render(template) for name, template in args.args.items()}
    if args.submit:
        await ctx.before_effect()
    try:
        result = await ctx.race(asyncio.wait_for(ctx.page.evaluate(args.script, arguments), ctx.timeout(args) / 1000))
    except asyncio.TimeoutError:
        raise StepTimeout(f"the script did not finish within {ctx.timeout(args)} ms", step=ctx.step_path) from None
    except PlaywrightError as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "Target" in message and "closed" in message:
            raise  # the page or browser went away: the engine classifies it
        raise ApplicationError(f"the script failed in the page: {message.removeprefix('Page.evaluate: ')}",
                               step=ctx.step_path) from None
    if args.to:
        scope, name = args.to.split(".", 1)
        (ctx.output if scope == "output" else ctx.vars)[name] = result


def _first_spec(args: Extract) -> Any:
    return args.locator[0] if isinstance(args.locator, list) else args.locator


async def dialog(ctx: StepContext, args: Dialog) -> None:
    prompt = ctx.render(args.prompt_text) if args.prompt_text is not None else None

    async def handle(opened: PwDialog) -> None:
        if args.to:
            scope, name = args.to.split(".", 1)
            (ctx.output if scope == "output" else ctx.vars)[name] = opened.message
        if args.action == "accept":
            await opened.accept(prompt) if prompt is not None else await opened.accept()
        else:
            await opened.dismiss()

    ctx.page.once("dialog", lambda opened: asyncio.ensure_future(handle(opened)))


async def screenshot(ctx: StepContext, args: Screenshot) -> None:
    if ctx.evidence_dir is None:
        return  # no artifacts folder configured: evidence is not kept
    ctx.evidence_dir.mkdir(parents=True, exist_ok=True)
    path = ctx.evidence_dir / f"{args.name}.png"
    masks = [ctx.page.locator("input[type=password]"), *ctx.secret_locators]
    await ctx.race(ctx.page.screenshot(path=str(path), mask=masks, full_page=args.full_page,
                                       timeout=ctx.timeout(args)))
    ctx.artifacts.append(str(path))


def matches_url(url: str, pattern: str) -> bool:
    """Whether ``url`` matches a glob such as ``*/cases/*``."""
    return fnmatch.fnmatchcase(url, pattern)
