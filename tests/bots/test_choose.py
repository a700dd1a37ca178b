"""``choose`` in real Chromium, against three kinds of type-and-pick widget on a loopback site
(``tests/widget_site``): an ARIA combobox, the real select2 library, and a ``<datalist>``. Each test asserts
what the site received when its form was sent, and that a case the widget cannot serve is handed back as
soon as the list has settled, well before the step's timeout."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from bots import BotConfig, BotEngine, BotJob, BusinessException, StepContext
from tests.conftest import ROOT
from tests.widget_site.app import WidgetSite, widget_site
from workflows import FIELD_MASK, SecretValues, check_case, parse_workflow

STEP_TIMEOUT_MS = 8000
HEADER = """
name: pick-claimant
version: 1
systems: {site: {}}
input:
  case_ref: {type: string}
  typed: {type: string}
  claimant: {type: string, required: false}
at_most_once: true
steps:
"""
SAVE = """
  - click: {role: button, name: Save, submit: true}
  - wait_for: {text: Claimant saved}
"""


@pytest.fixture
def site() -> Iterator[WidgetSite]:
    with widget_site() as running:
        yield running


@pytest.fixture
def engine(chromium: str, site: WidgetSite, tmp_path: Path) -> Iterator[BotEngine]:
    bot = BotEngine(BotConfig(system_urls={"site": site.url}, chromium_path=chromium, artifacts_dir=tmp_path / "artifacts",
                              step_timeout_ms=STEP_TIMEOUT_MS))
    yield bot
    bot.close()


def run(engine: BotEngine, steps: str, typed: str, claimant: str = "", secret: bool = False,
        job: dict | None = None) -> None:
    header = HEADER.replace("required: false", "required: false, secret: true") if secret else HEADER
    loaded = parse_workflow(header + steps, "pick.yaml")
    case = check_case(loaded.definition.input, {"case_ref": "CASE-1", "typed": typed, "claimant": claimant}, 1)
    engine.run(BotJob(loaded, loaded.definition.steps, case, "CASE-1", 1, SecretValues(), **(job or {})),
               before_effect=lambda: None)


def choose(page: str, locator: str = "{label: Claimant}", option: bool = True) -> str:
    picked = ', option: "{{ case.claimant }}"' if option else ""
    return f'  - goto: {page}\n  - choose: {{locator: {locator}, text: "{{{{ case.typed }}}}"{picked}}}\n'


def refused(engine: BotEngine, steps: str, typed: str, claimant: str = "", secret: bool = False,
            job: dict | None = None) -> BusinessException:
    """Run a case the widget cannot serve: it is handed back from the ``choose`` step, before the step's timeout."""
    started = time.monotonic()
    with pytest.raises(BusinessException) as caught:
        run(engine, steps, typed, claimant, secret, job)
    assert time.monotonic() - started < STEP_TIMEOUT_MS / 1000, "handed back once the list settled, not at the timeout"
    assert caught.value.step == "steps[1].choose"
    return caught.value


def test_choose_picks_from_an_aria_combobox_whose_list_comes_late_and_hands_back_a_name_it_does_not_offer(
        engine: BotEngine, site: WidgetSite) -> None:
    run(engine, choose("/aria") + SAVE, "jane", "Jane Smithers")
    run(engine, choose("/aria", option=False) + SAVE, "Jane Smith")  # "Jane Smithers" matches too: the whole name wins
    assert site.submitted == [{"widget": "aria", "claimant_id": "C-102"}, {"widget": "aria", "claimant_id": "C-101"}]

    missing = refused(engine, choose("/aria") + SAVE, "Zed", "Zed Alpha")
    assert (str(missing), missing.code) == ("no option 'Zed Alpha' was offered after typing 'Zed'", "no_such_option")
    several = refused(engine, choose("/aria", option=False) + SAVE, "Jane")
    assert (str(several), several.code) == ("3 options match 'Jane' after typing 'Jane', so none was chosen",
                                            "ambiguous_option")
    assert len(site.submitted) == 2, "nothing was sent for the cases handed back"


@pytest.mark.parametrize("locator", ["{label: Claimant}", "{role: combobox, name: Choose a claimant}"])
def test_choose_picks_from_the_real_select2_by_its_label_or_its_role_without_naming_its_internals(
        engine: BotEngine, site: WidgetSite, locator: str) -> None:
    run(engine, choose("/select2", locator) + SAVE, "smi", "John Smith")
    assert site.submitted == [{"widget": "select2", "claimant_id": "C-104"}]  # the <select> select2 replaces took it

    missing = refused(engine, choose("/select2", locator, option=False) + SAVE, "Zed")
    assert (str(missing), missing.code) == ("no option 'Zed' was offered after typing 'Zed'", "no_such_option")
    assert len(site.submitted) == 1


def test_choose_sets_a_datalist_field_to_one_of_its_options_and_hands_back_a_value_not_among_them(
        engine: BotEngine, site: WidgetSite) -> None:
    run(engine, choose("/datalist") + SAVE, "doe", "janet doe")
    assert site.submitted == [{"widget": "datalist", "claimant": "Janet Doe"}]

    missing = refused(engine, choose("/datalist", option=False) + SAVE, "Jane Smithson")
    assert (str(missing), missing.code) == ("no option 'Jane Smithson' was offered after typing 'Jane Smithson'",
                                            "no_such_option")
    assert len(site.submitted) == 1


MAGENTA = (255, 0, 255)  # Playwright's mask colour
CLAIMANT_BOX = (200, 100, 300, 40)  # where the ARIA page puts its claimant box: left, top, width, height


def test_a_secret_chosen_is_masked_in_the_screenshot_and_a_secret_being_typed_in_the_message_and_the_widget(
        engine: BotEngine) -> None:
    with pytest.raises(BusinessException) as caught:
        run(engine, choose("/aria") + "  - fail: {message: stopped to look at the evidence, code: probe}\n",
            "Jane", "Jane Smith", secret=True)
    assert caught.value.code == "probe", "the choice was made before the case stopped"
    kept = {Path(p).name: Path(p) for p in caught.value.evidence}  # type: ignore[attr-defined]
    shot = Image.open(kept["failure.png"]).convert("RGB")
    x, y, w, h = CLAIMANT_BOX
    assert all(shot.getpixel((x + 4 + i * (w - 8) // 4, y + 4 + j * (h - 8) // 4)) == MAGENTA
               for i in range(5) for j in range(5)), "the box showing the secret claimant is masked"

    masked: list[str] = []

    async def masks_after(ctx: StepContext, path: str, seconds: float, ok: bool) -> None:
        if path == "steps[1].choose":  # the step failed with the text typed and the list open: what is masked?
            for locator in ctx.secret_locators:
                masked.extend(await locator.evaluate_all("all => all.map(e => e.getAttribute('role') || e.tagName)"))

    typing_the_secret = choose("/select2").replace("case.typed", "case.claimant")
    missing = refused(engine, typing_the_secret, "unused", "Zed Alpha", secret=True, job={"on_step": masks_after})
    assert (str(missing), missing.code) == (f"no option {FIELD_MASK!r} was offered after typing {FIELD_MASK!r}",
                                            "no_such_option")
    assert {"combobox", "searchbox", "listbox"} <= set(masked), masked


TUTORIAL = (ROOT / "docs" / "tutorial.md").read_text()


@pytest.mark.parametrize(("page", "received"), [("/aria", {"claimant_id": "C-104"}),
                                               ("/select2", {"claimant_id": "C-104"}),
                                               ("/datalist", {"claimant": "John Smith"})])
def test_the_tutorials_choose_step_picks_the_claimant_in_each_kind_of_widget(
        engine: BotEngine, site: WidgetSite, page: str, received: dict) -> None:
    step = next(line for line in TUTORIAL.splitlines() if line.startswith("  - choose:"))
    steps = (f"  - goto: {page}\n{step}\n" + SAVE).replace("case.surname", "case.typed").replace("case.claimant_name",
                                                                                                  "case.claimant")
    run(engine, steps, "Smith", "John Smith")
    assert site.submitted == [{"widget": page.strip("/"), **received}]
