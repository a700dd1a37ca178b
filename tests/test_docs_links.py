"""Every relative link and anchor in ``docs/*.md`` and the README leads somewhere, by GitHub's rules.

A link's file must exist (images too). A ``#anchor``, in the same file or in ``other.md#anchor``, must be
made by a heading of the target file or be an explicit ``<a id="…">`` / ``<a name="…">``. GitHub makes a
heading's anchor from its text: lower case, everything but letters, digits, spaces, hyphens and
underscores dropped (underscores are kept, backticks and punctuation are not), each space a hyphen, and
``-1``, ``-2``… added to a repeated one. Links in code (fenced, indented or inline) and absolute URLs
(``https:``, ``mailto:``…) are not checked. No network: this reads files only.

Each broken link is one line, ``docs/x.md:LINE: link 'y.md#z' : no heading makes anchor 'z' in docs/y.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent


def documents(root: Path = ROOT) -> list[Path]:
    """The pages checked: the README and every Markdown file in ``docs/``."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


# -- reading Markdown ----------------------------------------------------------------------------------
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)((?:(?!\n[ \t]*\n).)+?)(?<!`)\1(?!`)", re.DOTALL)
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_LINK = re.compile(
    r"(!?)\[(?:[^\[\]]|\[[^\[\]]*\])*\]"           # [text] or ![alt], one level of brackets inside
    r"\(\s*(<[^<>\n]*>|[^\s()<>]*(?:\([^\s()]*\)[^\s()<>]*)*)"  # (target or (<target>
    r"(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^()]*\)))?\s*\)"  # an optional title, then )
)
_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:[ \t]*(<[^<>\n]*>|\S+)", re.MULTILINE)
_HTML_LINK = re.compile(r"<(a|img)\b[^>]*?\b(href|src)\s*=\s*(\"[^\"]*\"|'[^']*')", re.IGNORECASE)
_HTML_ANCHOR = re.compile(r"<a\b[^>]*?\b(?:id|name)\s*=\s*(\"[^\"]*\"|'[^']*')", re.IGNORECASE)
_SCHEME = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*:|//)")


def without_code_blocks(text: str) -> str:
    """``text`` with fenced and indented code blocks blanked out, line breaks kept (so offsets keep
    their line numbers). Code spans are left: a code span in a heading is part of its text."""
    out: list[str] = []
    fence: str | None = None
    previous_blank, in_indented = True, False
    for line in text.split("\n"):
        if fence is not None:
            out.append("")
            closing = _FENCE.match(line)
            if closing and closing.group(1)[0] == fence[0] and len(closing.group(1)) >= len(fence) \
                    and not line.strip().strip(fence[0]):
                fence = None
            continue
        opening = _FENCE.match(line)
        if opening:
            fence = opening.group(1)
            out.append("")
            previous_blank, in_indented = False, False
            continue
        blank = not line.strip()
        if not blank and line.startswith(("    ", "\t")) and (previous_blank or in_indented):
            in_indented = True  # an indented code block (the reference's docstring examples)
            out.append("")
            continue
        in_indented = in_indented and blank
        previous_blank = blank
        out.append(line)
    return "\n".join(out)


def prose(text: str) -> str:
    """``text`` with code blocks and code spans blanked out, line breaks kept: what GitHub renders as
    links is what is left."""
    return _CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), without_code_blocks(text))


def heading_texts(text: str) -> Iterator[str]:
    """The raw text of every heading (ATX ``## …`` and setext underlined), in order, code blocks excluded."""
    lines = without_code_blocks(text).split("\n")
    for number, line in enumerate(lines):
        atx = _ATX.match(line)
        if atx:
            yield atx.group(2) or ""
            continue
        above = lines[number - 1] if number else ""
        if _SETEXT.match(line) and above.strip() and not _ATX.match(above) \
                and not above.lstrip().startswith(("-", "*", "+", "|", ">")):
            yield above.strip()


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading, before the ``-1``, ``-2``… of a repeated one.

    Example: ``\\`wait_for\\``` → ``wait_for``; ``The lookup (\\`lookup\\`)`` → ``the-lookup-lookup``.
    """
    text = re.sub(r"<[^>]+>", "", heading)                          # inline HTML tags
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)          # links and images: their text
    code: list[str] = []

    def set_aside(match: re.Match[str]) -> str:  # a code span's text is kept as it is, underscores and all
        code.append(match.group(2).strip())
        return f"\x00{len(code) - 1}\x00"

    text = re.sub(r"(`+)(.+?)\1", set_aside, text)
    text = re.sub(r"(?<![A-Za-z0-9])_+|_+(?![A-Za-z0-9])", "", text)  # _emphasis_ (intraword _ is text)
    text = re.sub(r"\x00(\d+)\x00", lambda m: code[int(m.group(1))], text)
    text = text.strip().lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor a page has: one per heading (repeats numbered as GitHub does) and explicit HTML ones."""
    made: set[str] = set()
    seen: dict[str, int] = {}
    for heading in heading_texts(text):
        base = github_anchor(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        made.add(base if count == 0 else f"{base}-{count}")
    for match in _HTML_ANCHOR.finditer(prose(text)):
        made.add(match.group(1)[1:-1])
    return made


@dataclass(frozen=True)
class Link:
    line: int
    target: str
    image: bool


def links(text: str) -> Iterator[Link]:
    """Every link and image in the prose of a page: inline, reference definitions and HTML ``href``/``src``."""
    body = prose(text)

    def line_of(offset: int) -> int:
        return body.count("\n", 0, offset) + 1

    for match in _LINK.finditer(body):
        yield Link(line_of(match.start()), match.group(2).strip("<>"), match.group(1) == "!")
    for match in _DEFINITION.finditer(body):
        yield Link(line_of(match.start()), match.group(1).strip("<>"), False)
    for match in _HTML_LINK.finditer(body):
        yield Link(line_of(match.start()), match.group(3)[1:-1], match.group(1).lower() == "img")


# -- checking ------------------------------------------------------------------------------------------
def check(pages: list[Path], root: Path = ROOT) -> list[str]:
    """One line per broken relative link or anchor in ``pages``; empty when every one leads somewhere."""
    problems: list[str] = []
    cache: dict[Path, set[str]] = {}

    def anchors_of(path: Path) -> set[str]:
        if path not in cache:
            cache[path] = anchors(path.read_text(encoding="utf-8"))
        return cache[path]

    def shown(path: Path) -> str:
        return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)

    for page in pages:
        for link in links(page.read_text(encoding="utf-8")):
            target = link.target
            if not target or _SCHEME.match(target):
                continue
            where = f"{shown(page)}:{link.line}: {'image' if link.image else 'link'} '{target}'"
            address, _, fragment = target.partition("#")
            address = unquote(address)
            if address:
                path = ((root / address.lstrip("/")) if address.startswith("/") else (page.parent / address)).resolve()
                if not path.is_relative_to(root):
                    problems.append(f"{where} : it leads out of the repository")
                    continue
                if not path.exists():
                    problems.append(f"{where} : no file {shown(path)}")
                    continue
            else:
                path = page
            if not fragment or path.suffix.lower() != ".md":
                continue  # an anchor into another kind of file (a line of code) is not a heading
            anchor = unquote(fragment)
            if anchor not in anchors_of(path):
                problems.append(f"{where} : no heading makes anchor '{anchor}' in {shown(path)}")
    return problems


# -- the tests -----------------------------------------------------------------------------------------
def test_every_relative_link_and_anchor_in_the_docs_and_the_readme_leads_somewhere() -> None:
    problems = check(documents())
    assert not problems, "broken links:\n" + "\n".join(problems)


@pytest.mark.parametrize(("heading", "anchor"), [
    ("`wait_for`", "wait_for"),
    ("`for_each`", "for_each"),
    ("The lookup (`lookup`)", "the-lookup-lookup"),
    ("Target systems (`systems.NAME`)", "target-systems-systemsname"),
    ("`{label: …}`", "label-"),
    ("4. What the bot saw: the evidence", "4-what-the-bot-saw-the-evidence"),
    ("Does every row add up? `autoclerk batches reconcile`", "does-every-row-add-up-autoclerk-batches-reconcile"),
    ("The *session* and __its__ [cookies](x.md)", "the-session-and-its-cookies"),
    ("snake_case names", "snake_case-names"),
    ("A  double space", "a--double-space"),
])
def test_a_heading_makes_the_anchor_github_makes(heading: str, anchor: str) -> None:
    assert github_anchor(heading) == anchor


def test_repeated_headings_are_numbered_and_html_anchors_count() -> None:
    text = "# Notes\n\n## Notes\n\nSetext\n======\n\n## Notes\n\n<a id=\"kept\"></a>\n<a name='old'></a>\n"
    assert anchors(text) == {"notes", "notes-1", "notes-2", "setext", "kept", "old"}


def test_a_broken_link_is_one_line_naming_the_file_the_line_and_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "y.md").write_text("# Y\n\n## `wait_for`\n\n```md\n## Inside code\n```\n")
    (tmp_path / "docs" / "x.md").write_text(
        "# X\n\n"
        "[good](y.md#wait_for) [self](#x) [web](https://example.org/#nowhere) [mail](mailto:a@b.c)\n"
        "[bad anchor](y.md#waitfor)\n"
        "![missing image](images/none.png)\n"
        "[code heading](y.md#inside-code) `[in code](nowhere.md)`\n"
        "\n```\n[in a fence](nowhere.md)\n```\n\n"
        "    [indented code](nowhere.md)\n\n"
        "[missing file](z.md) [out](../../outside.md) [defined]\n\n"
        "[defined]: y.md#y\n"
    )
    assert check([tmp_path / "docs" / "x.md"], tmp_path) == [
        "docs/x.md:4: link 'y.md#waitfor' : no heading makes anchor 'waitfor' in docs/y.md",
        "docs/x.md:5: image 'images/none.png' : no file docs/images/none.png",
        "docs/x.md:6: link 'y.md#inside-code' : no heading makes anchor 'inside-code' in docs/y.md",
        "docs/x.md:14: link 'z.md' : no file docs/z.md",
        "docs/x.md:14: link '../../outside.md' : it leads out of the repository",
    ]
