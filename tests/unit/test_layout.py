"""The layout of app/ (DESIGN §1 "Where code lives"), checked on the import graph built from the source.

Every ``import`` counts, at module level or inside a function (a function-level import is a dependency
that is only loaded later); imports under ``if TYPE_CHECKING:`` do not (they never run).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"

#: Entry points: parse, call one service, render. Nothing but other entry points imports them.
ENTRY_POINTS = (
    "app",  # create_app, the Flask factory
    "app.web",
    "app.api",
    "app.cli",
    "app.demo",  # `outreach demo`'s seeding, used by the CLI only
    "app.metrics",  # the /metrics endpoint, registered by create_app
    "app.tasks",  # RQ job functions: services enqueue them by name
    "app.worker",
    "app.channels.webhooks",  # the Twilio webhooks
    "app.channels.sms_fast_path",  # POST /twilio/sms below Flask: the same webhook, as WSGI middleware
    "app.i18n_check",  # `make check-catalog`
)
#: The composition root: only entry points build the runtime; services are handed one.
COMPOSITION_ROOT = "app.bootstrap"
#: Libraries that do I/O (HTTP, SQL, queues), never imported by the pure engine and triage.
IO_LIBRARIES = {
    "flask",
    "werkzeug",
    "twilio",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "psycopg2",
    "rq",
    "redis",
    "requests",
    "httpx",
    "urllib3",
    "socket",
    "prometheus_client",
    "gunicorn",
}
PURE_PACKAGES = ("app.flows", "app.triage")
#: Service packages that still depend on each other both ways through different modules (no module-level
#: circle: see ``test_no_import_cycle_among_services``). DESIGN §1 itself lets messaging and escalation
#: import each other (escalation pages through messaging; inbound escalates what patients send). The test
#: fails when a new pair appears; remove a pair here once it is gone.
KNOWN_TWO_WAY_PACKAGES = {
    frozenset({"app.messaging", "app.escalation"}),
    frozenset({"app.messaging", "app.conversations"}),
    frozenset({"app.messaging", "app.scheduling"}),
    frozenset({"app.escalation", "app.scheduling"}),
    frozenset({"app.flows", "app.triage"}),  # both pure: the engine's red-flag intent and triage's term loader
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(APP.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(path): path for path in sorted(APP.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Dotted names this module imports (absolute, relative imports resolved), skipping TYPE_CHECKING blocks."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            for alias in node.names:
                # `from app import runtime` imports the module app.runtime; `from app.db import Base` imports app.db.
                yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
        stack.extend(ast.iter_child_nodes(node))


def _graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(app module → app modules it imports, app module → top-level external packages it imports)."""
    internal: dict[str, set[str]] = {}
    external: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        names = set(_imported_names(tree, module, path.name == "__init__.py"))
        internal[module] = {name for name in names if name in MODULES} - {module}
        external[module] = {name.split(".")[0] for name in names if name.split(".")[0] != "app"}
    return internal, external


INTERNAL, EXTERNAL = _graph()


def _under(module: str, roots: tuple[str, ...] | str) -> bool:
    roots = (roots,) if isinstance(roots, str) else roots
    return any(module == root or (root != "app" and module.startswith(root + ".")) for root in roots)


def _is_service(module: str) -> bool:
    return not _under(module, ENTRY_POINTS) and module != COMPOSITION_ROOT


SERVICES = sorted(module for module in MODULES if _is_service(module))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_the_app() -> None:
    # The checks below mean something only if the parser finds the modules and their imports.
    assert {"app.messaging.inbound", "app.conversations.service", "app.escalation.paging"} <= set(SERVICES)
    assert "app.messaging.outbound" in INTERNAL["app.escalation.paging"]
    assert "app.runtime" in INTERNAL["app.tasks"] or "app.bootstrap" in INTERNAL["app.tasks"]
    assert "sqlalchemy" in EXTERNAL["app.messaging.inbound"]


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_services() -> None:
    graph = {module: {dep for dep in INTERNAL[module] if _is_service(dep)} for module in SERVICES}
    assert _cycles(graph) == []


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_no_new_two_way_dependency_between_service_packages() -> None:
    edges = {
        (_package(module), _package(dep))
        for module in SERVICES
        for dep in INTERNAL[module]
        if _is_service(dep) and _package(module) != _package(dep)
    }
    two_way = {frozenset(edge) for edge in edges if (edge[1], edge[0]) in edges}
    assert two_way <= KNOWN_TWO_WAY_PACKAGES, sorted(sorted(pair) for pair in two_way - KNOWN_TWO_WAY_PACKAGES)
    # A circle through three or more packages would hide from the pairwise check.
    package_graph: dict[str, set[str]] = {}
    for source, target in edges:
        if frozenset((source, target)) not in KNOWN_TWO_WAY_PACKAGES:
            package_graph.setdefault(source, set()).add(target)
    assert _cycles(package_graph) == []


@pytest.mark.parametrize("package", PURE_PACKAGES)
def test_pure_packages_import_nothing_with_io(package: str) -> None:
    # What the engine and triage load, directly or through app modules they import.
    seen: set[str] = set()
    todo = [module for module in MODULES if _under(module, package)]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(INTERNAL[module])
    leaks = {module: sorted(EXTERNAL[module] & IO_LIBRARIES) for module in seen if EXTERNAL[module] & IO_LIBRARIES}
    assert leaks == {}
    assert all(_under(module, (*PURE_PACKAGES, "app.i18n", "app.config")) for module in seen), sorted(seen)


def test_services_never_import_entry_points_or_the_composition_root() -> None:
    reaching = {
        module: sorted(dep for dep in INTERNAL[module] if not _is_service(dep))
        for module in SERVICES
        if any(not _is_service(dep) for dep in INTERNAL[module])
    }
    assert reaching == {}


def test_app_package_holds_only_create_app() -> None:
    tree = ast.parse((APP / "__init__.py").read_text(encoding="utf-8"))
    definitions = [node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef)]
    assert definitions == ["create_app"]


def test_job_names_in_services_name_job_functions() -> None:
    # Services enqueue by name ("app.tasks.<function>"); RQ stores that name in Redis and imports it on a worker.
    tasks = ast.parse((APP / "tasks.py").read_text(encoding="utf-8"))
    jobs = {node.name for node in tasks.body if isinstance(node, ast.FunctionDef)}
    named: set[str] = set()
    for module in SERVICES:
        for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("app.tasks."):
                named.add(node.value)
    assert named >= {"app.tasks.process_inbound", "app.tasks.send_messages", "app.tasks.send_message"}
    assert {name.removeprefix("app.tasks.") for name in named} <= jobs
