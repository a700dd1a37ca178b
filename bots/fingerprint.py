"""Element fingerprints, and the deterministic rule that scores a page's elements against one.

A fingerprint is what a person would recognise an element by: its tag and role, its accessible name and
the text of its label, its id, ``name`` and classes, the text beside it, and its place in its form.
:func:`score` compares a candidate with a recorded fingerprint, attribute by attribute, with fixed
weights: no model, no service, the same answer every time (the idea of Healenium's scoring, without its
DOM-path similarity, which a moved field defeats).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from typing import Any

FINGERPRINT_JS = """el => {
  const said = s => (s || '').split(/\\s+/).join(' ').trim().slice(0, 200);
  const tag = el.tagName.toLowerCase();
  const type = (el.getAttribute('type') || '').toLowerCase();
  const implicit = () => {
    if (tag === 'button' || (tag === 'input' && ['submit', 'button', 'reset', 'image'].includes(type))) return 'button';
    if (tag === 'input' && type === 'checkbox') return 'checkbox';
    if (tag === 'input' && type === 'radio') return 'radio';
    if (tag === 'input' || tag === 'textarea') return 'textbox';
    if (tag === 'select') return 'combobox';
    if (tag === 'a' && el.hasAttribute('href')) return 'link';
    return '';
  };
  const labels = el.labels ? [...el.labels].map(l => said(l.innerText)).filter(Boolean).join(' ') : '';
  const byId = (el.getAttribute('aria-labelledby') || '').split(/\\s+/).filter(Boolean)
    .map(id => document.getElementById(id)).filter(Boolean).map(e => said(e.innerText)).join(' ');
  const role = el.getAttribute('role') || implicit();
  // Only a control's own text names it; any other element's text is what a step reads: case data.
  const own = !['button', 'link', 'tab', 'menuitem', 'option'].includes(role) ? ''
    : (tag === 'input' ? el.value : el.innerText);
  const name = said(el.getAttribute('aria-label') || byId || labels || own || el.getAttribute('title')
    || el.getAttribute('placeholder'));
  let block = el.parentElement;
  while (block && block !== document.body && !said(block.innerText).replace(said(el.innerText), '').trim())
    block = block.parentElement;
  const nearby = block ? said(said(block.innerText).replace(said(el.innerText), '')) : '';
  const form = el.form || el.closest('form');
  const controls = form ? [...form.elements].filter(e => e.type !== 'hidden') : [];
  return {tag, role, type, name, label: labels,
          id: el.id || '', field: el.getAttribute('name') || '', classes: [...el.classList].sort(),
          nearby, form: form ? (form.id || form.getAttribute('action') || 'form') : '',
          position: form ? controls.indexOf(el) : -1};
}"""
"""Run in the page on one element: its :class:`Fingerprint` as a mapping."""

CANDIDATES_JS = """tag => {
  const fp = FINGERPRINT;
  const seen = new Set();
  const pool = document.querySelectorAll(
    `input:not([type=hidden]), select, textarea, button, a[href], [role], ${CSS.escape(tag)}`);
  const unique = sel => { try { return document.querySelectorAll(sel).length === 1; } catch (e) { return false; } };
  const selector = el => {
    if (el.id && unique('#' + CSS.escape(el.id))) return '#' + CSS.escape(el.id);
    const t = el.tagName.toLowerCase();
    const n = el.getAttribute('name');
    if (n && unique(`${t}[name="${CSS.escape(n)}"]`)) return `${t}[name="${CSS.escape(n)}"]`;
    const path = [];
    for (let e = el; e && e !== document.documentElement; e = e.parentElement) {
      if (e.id && unique('#' + CSS.escape(e.id))) { path.unshift('#' + CSS.escape(e.id)); break; }
      const same = [...(e.parentElement ? e.parentElement.children : [])].filter(s => s.tagName === e.tagName);
      path.unshift(e.tagName.toLowerCase() + (same.length > 1 ? `:nth-of-type(${same.indexOf(e) + 1})` : ''));
    }
    return path.join(' > ');
  };
  const out = [];
  for (const el of pool) {
    if (seen.has(el) || out.length >= 2000) continue;
    seen.add(el);
    const box = el.getBoundingClientRect();
    if (!el.getClientRects().length || box.width === 0 || box.height === 0) continue;
    out.push({selector: selector(el), fingerprint: fp(el)});
  }
  return out;
}""".replace("FINGERPRINT", FINGERPRINT_JS)
"""Run in the page with the recorded tag: every showing element that could be the lost one (form
controls, links, elements with a role, and elements of the recorded tag), each with a CSS selector that
names it alone and its fingerprint."""


@dataclass(frozen=True)
class Fingerprint:
    """What an element is recognised by (see the module docstring); stored as a JSON mapping."""

    tag: str
    role: str = ""
    type: str = ""
    name: str = ""
    label: str = ""
    id: str = ""
    field: str = ""
    classes: tuple[str, ...] = ()
    nearby: str = ""
    form: str = ""
    position: int = -1

    @classmethod
    def of(cls, data: dict[str, Any]) -> "Fingerprint":
        """A fingerprint from its mapping (unknown keys ignored, so an older bot can read a newer record)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["classes"] = tuple(values.get("classes") or ())
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["classes"] = list(self.classes)
        return data


WEIGHTS = {"tag": 1.0, "role": 1.0, "type": 0.5, "name": 3.0, "label": 2.0, "id": 2.0, "field": 2.0,
           "classes": 1.0, "nearby": 1.5, "place": 1.0}
"""How much each attribute counts. The words a person reads (name, label, nearby text) count most; an id
or a ``name`` attribute as much as a label (they are what locators use, and what drifts)."""


def score(recorded: Fingerprint, candidate: Fingerprint) -> float:
    """How well ``candidate`` matches ``recorded``, from 0 to 1: the weighted share of the recorded
    attributes it matches. An attribute the recorded element did not have (no id, no label) counts
    neither way; tag, role and place always count.
    """
    total = got = 0.0
    for attribute, weight in WEIGHTS.items():
        if attribute == "place":
            similarity = _place(recorded, candidate)
        else:
            mine, theirs = getattr(recorded, attribute), getattr(candidate, attribute)
            if attribute not in ("tag", "role") and not mine:
                continue
            similarity = 1.0 if mine == theirs else _words(mine, theirs)
        total += weight
        got += weight * similarity
    return round(got / total, 3) if total else 0.0


def _words(a: Any, b: Any) -> float:
    """Word overlap (Jaccard) of two texts, ids or class lists: ``city`` and ``home-city`` share half."""
    first, second = _tokens(a), _tokens(b)
    if not first or not second:
        return 0.0
    return len(first & second) / len(first | second)


def _tokens(value: Any) -> set[str]:
    text = " ".join(value) if isinstance(value, (tuple, list)) else str(value)
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)  # camelCase ids split into words
    return {word for word in re.split(r"[^a-z0-9]+", text.lower()) if word}


def _place(recorded: Fingerprint, candidate: Fingerprint) -> float:
    if recorded.form != candidate.form:
        return 0.0
    if recorded.position < 0 or candidate.position < 0:
        return 1.0 if recorded.position == candidate.position else 0.0
    return 1.0 / (1 + abs(recorded.position - candidate.position))
