"""The shape of the code, read from the source: imports flow one way and no two modules import each other.

- Packages: workflows ← bots ← orchestrator; monitoring imports none of them.
- The rooms of the orchestrator: ledger ← accounts, ledger ← queue ← web, queue ← cli. The CLI starts
  the web service (``autoclerk serve``) through ``orchestrator.web``'s package and nothing else of it; the
  web package never imports the CLI. The pages and the API never import each other.
- Only the demo commands import the demo system.
- No import cycle, however long.

Every import counts: at the top of a module or inside a function, absolute or relative, and those a package's
``__init__.pyi`` lists for its lazily loaded names, or a command group's ``lazy_commands`` names (they run on first
use). An import under
``if TYPE_CHECKING:`` does not (it never runs). An edge goes to the module imported, or, for a name taken
from a package, to that package's ``__init__`` (which re-exports it from a sibling): a submodule that takes
a name from its own package's ``__init__`` therefore makes a cycle, and must import from the sibling.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("workflows", "bots", "orchestrator", "monitoring", "demo_portal")

FORBIDDEN = {
    "workflows": {"bots", "orchestrator", "demo_portal", "celery", "kombu", "pika", "sqlalchemy", "playwright"},
    "bots": {"orchestrator", "demo_portal", "celery", "kombu", "pika", "sqlalchemy"},
    "monitoring": {"workflows", "bots", "orchestrator", "demo_portal", "celery", "sqlalchemy", "playwright"},
}
"""Top-level names a package never imports (other packages of ours, and libraries above its layer)."""

ROOMS = {
    "orchestrator.ledger": {"orchestrator.queue", "orchestrator.web", "orchestrator.cli", "orchestrator.accounts"},
    "orchestrator.accounts": {"orchestrator.queue", "orchestrator.web", "orchestrator.cli"},
    "orchestrator.queue": {"orchestrator.web", "orchestrator.cli"},
    "orchestrator.web": {"orchestrator.cli"},
    "orchestrator.cli": {"orchestrator.web"},
    "orchestrator.errors": {"orchestrator.ledger", "orchestrator.accounts", "orchestrator.queue", "orchestrator.web",
                            "orchestrator.cli"},
    "orchestrator.settings": {"orchestrator.ledger", "orchestrator.accounts", "orchestrator.queue", "orchestrator.web",
                              "orchestrator.cli"},
    "orchestrator.deadlines": {"orchestrator.ledger", "orchestrator.accounts", "orchestrator.queue", "orchestrator.web",
                               "orchestrator.cli", "orchestrator.settings"},
}
"""What each room of the orchestrator never imports."""

ALLOWED = {("orchestrator.cli.service", "orchestrator.web"): "'autoclerk serve' starts the web service"}
"""The exceptions to :data:`ROOMS`, each with its reason."""

PAGES = {"orchestrator.web.signin", "orchestrator.web.handoff_pages", "orchestrator.web.batch_pages",
         "orchestrator.web.ops_pages", "orchestrator.web.audit_pages", "orchestrator.web.api"}
DEMO_COMMANDS = {"orchestrator.cli.demo"}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int

    def __str__(self) -> str:
        return f"{self.source} -> {self.target} (line {self.line})"


def module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def exists(module: str) -> bool:
    base = ROOT.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _type_checking(child):
            for other in child.orelse:
                yield from _import_nodes(other)
            continue
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        yield from _import_nodes(child)


def _lazy_commands(tree: ast.Module) -> Iterator[ast.ImportFrom]:
    """The ``".module:attribute"`` values of each ``lazy_commands=`` mapping (a dict, or a module-level one by name),
    as the relative imports the command group makes when a command runs."""
    named = {target.id: node.value for node in tree.body if isinstance(node, ast.Assign)
             for target in node.targets if isinstance(target, ast.Name)}
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "lazy_commands":
            mapping = named.get(node.value.id) if isinstance(node.value, ast.Name) else node.value
            assert isinstance(mapping, ast.Dict), f"line {node.lineno}: lazy_commands is not a mapping written out"
            for value in mapping.values:
                assert isinstance(value, ast.Constant) and isinstance(value.value, str)
                module, _, attribute = value.value.partition(":")
                yield ast.ImportFrom(module=module.lstrip("."), names=[ast.alias(attribute)],
                                     level=len(module) - len(module.lstrip(".")), lineno=value.lineno)


def imports(path: Path) -> Iterator[tuple[str, int, bool]]:
    """Each module ``path`` imports: ``(name, line, absolute)``, relative imports resolved, names taken
    from a package resolved to the submodule when one has that name."""
    module = module_of(path)
    package = module if path.stem == "__init__" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    for node in [*_import_nodes(tree), *_lazy_commands(tree)]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, True
            continue
        if node.level:
            anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
            base = ".".join(anchor + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            yield (sub if exists(sub) else base), node.lineno, node.level == 0


def source_files() -> list[Path]:
    return sorted(f for package in PACKAGES for pattern in ("*.py", "__init__.pyi")
                  for f in (ROOT / package).rglob(pattern))


def graph() -> list[Edge]:
    """Every import between modules of the project."""
    edges = []
    for file in source_files():
        source = module_of(file)
        for target, line, _ in imports(file):
            while target and not exists(target):  # ``import a.b.c`` of a name: the nearest module
                target = target.rpartition(".")[0]
            if target and target.split(".")[0] in PACKAGES and target != source:
                edges.append(Edge(source, target, line))
    return edges


def within(module: str, room: str) -> bool:
    return module == room or module.startswith(room + ".")


def cycles(edges: list[Edge]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm), each in a stable order."""
    successors: dict[str, set[str]] = {}
    for edge in edges:
        successors.setdefault(edge.source, set()).add(edge.target)
        successors.setdefault(edge.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(successors[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(successors):
        if node not in index:
            visit(node)
    return found


def describe(component: list[str], edges: list[Edge]) -> str:
    inside = set(component)
    ties = sorted({str(e) for e in edges if e.source in inside and e.target in inside})
    return f"cycle of {len(component)} modules: " + "; ".join(ties)


# -- the tests ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_nothing_above_it(package: str) -> None:
    offenders = [f"{file.relative_to(ROOT)}:{line}: {name}" for file in (ROOT / package).rglob("*.py")
                 for name, line, _ in imports(file) if name.split(".")[0] in FORBIDDEN[package]]
    assert offenders == []


@pytest.mark.parametrize("room", sorted(ROOMS))
def test_each_room_of_the_orchestrator_imports_only_what_is_below_it(room: str) -> None:
    offenders = [str(e) for e in graph() if within(e.source, room)
                 and any(within(e.target, other) for other in ROOMS[room]) and (e.source, e.target) not in ALLOWED]
    assert offenders == []


def test_the_cli_reaches_the_web_service_only_to_start_it() -> None:
    used = {(e.source, e.target) for e in graph() if within(e.source, "orchestrator.cli")
            and within(e.target, "orchestrator.web")}
    assert used == set(ALLOWED)


def test_pages_and_the_api_never_import_each_other() -> None:
    assert [str(e) for e in graph() if e.source in PAGES and e.target in PAGES] == []


def test_only_the_demo_commands_import_the_demo_system() -> None:
    importers = {e.source for e in graph() if within(e.target, "demo_portal") and not within(e.source, "demo_portal")}
    assert importers <= DEMO_COMMANDS
    assert importers, "the demo commands import demo_portal: the graph must see it"


def test_no_modules_import_each_other_directly_or_through_others() -> None:
    edges = graph()
    assert [describe(component, edges) for component in cycles(edges)] == []


def test_the_graph_resolves_relative_imports_and_names_taken_from_a_package() -> None:
    edges = {(e.source, e.target) for e in graph()}
    assert ("orchestrator.queue.publisher", "orchestrator.queue.celery_app") in edges  # from .celery_app import …
    assert ("orchestrator.web.api", "orchestrator.queue") in edges  # from ..queue import … (the package)
    assert ("orchestrator.cli", "orchestrator.cli.run") in edges  # lazy_commands: "run": ".run:run"
    assert ("orchestrator.cli.cases", "orchestrator.cli.demo") in edges  # lazy_commands={"generate": ".demo:…"}
    assert ("orchestrator.queue", "orchestrator.queue.handoff") in edges  # __init__.pyi: from .handoff import …


def test_the_cycle_finder_names_a_cycle_through_a_package_init() -> None:
    edges = [Edge("pkg", "pkg.a", 1), Edge("pkg.a", "pkg.b", 2), Edge("pkg.b", "pkg", 3), Edge("pkg.b", "other", 4)]
    assert cycles(edges) == [["pkg", "pkg.a", "pkg.b"]]
    assert "pkg.b -> pkg (line 3)" in describe(cycles(edges)[0], edges)
    assert cycles([Edge("a", "b", 1)]) == []
