"""The scoring rule and the healing policy on their own (no browser): same answer every time, a heal only for
one clear candidate, and only reading steps and fields with no secret heal without a person."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bots import Fingerprint
from bots.fingerprint import score
from bots.healing import judge, may_heal_alone
from workflows.steps import Click, Extract, Fill

CITY = Fingerprint(tag="input", role="textbox", name="Town or city", label="Town or city", id="city", field="city",
                   nearby="Town or city", form="change-form", position=2)


def candidate(selector: str, **changes: Any) -> dict[str, Any]:
    return {"selector": selector, "fingerprint": {**CITY.as_dict(), **changes}}


def test_an_identical_element_scores_one_and_a_renamed_id_still_clears_the_threshold() -> None:
    assert score(CITY, CITY) == 1.0
    renamed = Fingerprint.of(candidate("#town", id="town")["fingerprint"])
    assert 0.8 < score(CITY, renamed) < 1.0
    other = Fingerprint.of(candidate("#postcode", name="Postcode", label="Postcode", id="postcode", field="postcode",
                                     nearby="Postcode", position=3)["fingerprint"])
    assert score(CITY, other) < 0.3


def test_one_clear_candidate_is_chosen_whatever_the_page_order() -> None:
    page = [candidate("#line1", name="Address line 1", label="Address line 1", id="address_line1",
                      field="address_line1", nearby="Address line 1", position=0),
            candidate("#town", id="town")]
    for order in (page, page[::-1]):
        verdict = judge(CITY, order, threshold=0.6, margin=0.15)
        assert (verdict.selector, verdict.refused) == ("#town", None)
        assert verdict.best - verdict.runner_up >= 0.15


def test_two_close_candidates_and_nothing_alike_are_refused_with_the_reason() -> None:
    twins = [candidate("#city-home", id="city-home"), candidate("#city-work", id="city-work", field="city_work", position=3)]
    verdict = judge(CITY, twins, threshold=0.6, margin=0.15)
    assert verdict.refused is not None and verdict.refused.startswith("two elements are alike")
    unlike = [candidate("#notes", tag="textarea", name="Notes", label="Notes", id="notes", field="notes",
                        nearby="Notes", position=9)]
    assert judge(CITY, unlike, 0.6, 0.15).refused.startswith("no element on the page is like it")  # type: ignore[union-attr]
    assert judge(CITY, [], 0.6, 0.15).refused == "the page shows no element like it"


def test_an_attribute_the_recorded_element_lacked_counts_neither_way() -> None:
    bare = Fingerprint(tag="strong", nearby="Confirmation reference:", id="confirmation-ref")
    assert score(bare, Fingerprint(tag="strong", nearby="Confirmation reference:", id="confirmation-ref",
                                   classes=("ref-value",), name="CHG-1")) == 1.0


@dataclass
class Step:
    """What the policy reads of the step being run (a StepContext has these)."""

    step_verb: str
    step_args: Any
    secret_templates: tuple[str, ...] = ()

    def names_secret(self, template: str) -> bool:
        return template in self.secret_templates


def test_only_reading_steps_and_fields_filled_with_no_secret_heal_without_a_person() -> None:
    extract = Extract.model_validate({"locator": "#x", "to": "output.x"})
    fill = Fill.model_validate({"locator": "#city", "value": "{{ case.city }}"})
    secret = Fill.model_validate({"locator": "#pin", "value": "{{ secrets.pin }}"})
    assert may_heal_alone(Step("extract", extract))  # type: ignore[arg-type]
    assert may_heal_alone(Step("assert", None))  # type: ignore[arg-type]
    assert may_heal_alone(Step("fill", fill))  # type: ignore[arg-type]
    assert not may_heal_alone(Step("fill", secret, ("{{ secrets.pin }}",)))  # type: ignore[arg-type]
    assert not may_heal_alone(Step("click", Click.model_validate({"locator": "#go"})))  # type: ignore[arg-type]
    assert not may_heal_alone(Step("click", Click.model_validate({"locator": "#go", "submit": True})))  # type: ignore[arg-type]
    assert not may_heal_alone(Step("upload", None))  # type: ignore[arg-type]
