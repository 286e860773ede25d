"""The layering of physkan (docs/architecture.md), checked statically with ``ast``.

The import graph counts every ``import`` / ``from … import`` in ``physkan/`` — also those
inside functions (a lazy import is still a dependency) and ``importlib.import_module`` /
``__import__`` calls with a literal ``"physkan…"`` name — except those under
``if TYPE_CHECKING:``. ``physkan/__init__.py`` is the composition root: it may import
anything, and importing a submodule does not count as importing it.

The tests fail on

* an import circle that crosses packages (a package is ``physkan.<sub>`` or a top-level
  module such as ``physkan.io``), naming the circle and the imports that close it;
* any import of ``physkan.plugins`` from core (everything below ``plugins``);
* an import that goes up the layers (:data:`LAYERS`);
* a package that has no layer yet (add it to :data:`LAYERS` and to the doc);
* a package's command line (``physkan.<pkg>.cli``) counts as part of the ``cli`` layer;
* a bottom module (``_fs``, ``registry``, ``errors``, ``_version``) importing physkan, and a zoo serving
  module importing torch or a torch-heavy layer when it is imported.

Every violation found is also written to ``/tmp/arch_violations.txt`` (one a line).
"""

from __future__ import annotations

import ast
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "physkan"
VIOLATIONS_FILE = Path("/tmp/arch_violations.txt")

#: the layers, top first; a module may import from its own package, from packages of its
#: own layer (if that makes no circle) and from any layer below it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("cli", "bench"),
    ("zoo", "discover", "plugins", "api"),
    ("strategies",),
    ("s2kan", "train", "interpret"),
    ("problems",),
    ("physics",),
    ("symbolic",),
    ("kan",),
    ("io",),
    ("_fs", "registry", "errors", "_version", "budget", "_lazy", "linalg"),
)
RANK: dict[str, int] = {pkg: len(LAYERS) - i for i, layer in enumerate(LAYERS) for pkg in layer}

#: module names that make a package's command-line front end (part of the cli layer).
CLI_MODULES = ("cli", "__main__")

#: packages that must never import physkan.plugins (everything below the plugins layer).
CORE = tuple(pkg for pkg, rank in RANK.items() if rank < RANK["plugins"])

#: what the bottom modules may import from physkan.
BOTTOM_ALLOWED = {"_fs": (), "errors": (), "_version": (), "registry": ("physkan.errors",),
                  "budget": ("physkan.errors",), "_lazy": (), "linalg": ()}

#: the zoo modules a server process imports: they must stay light (no torch) at import time.
ZOO_SERVING = ("physkan.zoo.server",)
HEAVY_EXTERNAL = ("torch", "lightning", "pytorch_lightning", "sympy", "torchdiffeq")
LIGHT_PACKAGES = ("zoo", "_fs", "registry", "errors", "_version", "_lazy")


@dataclass(frozen=True)
class Edge:
    """One import: ``source`` module imports ``target`` (a physkan module or an external top
    package name) at ``line``; ``lazy`` when inside a function body."""

    source: str
    target: str
    line: int
    lazy: bool

    def where(self) -> str:
        return f"{self.source}:{self.line} -> {self.target}"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def package_of(module: str) -> str:
    """``physkan.kan.basis`` -> ``kan``; ``physkan.io`` -> ``io``; ``physkan`` -> ``""``.

    A package's command-line front end (``physkan.<pkg>.cli``, ``physkan.<pkg>.__main__``)
    belongs to the ``cli`` layer: it may import anything below, and only the CLI imports it.
    """
    parts = module.split(".")
    if len(parts) in (2, 3) and parts[-1] in CLI_MODULES:  # physkan.__main__ too
        return "cli"
    return parts[1] if len(parts) > 1 else ""


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _target(name: str) -> str:
    """The physkan module ``name`` means (the longest known prefix), or its top package."""
    if name != "physkan" and not name.startswith("physkan."):
        return name.split(".")[0]
    known = _modules()
    parts = name.split(".")
    while parts and ".".join(parts) not in known:
        parts.pop()
    return ".".join(parts) or "physkan"


def _walk(node: ast.AST, lazy: bool) -> Iterator[tuple[ast.AST, bool]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield other, lazy
                yield from _walk(other, lazy)
            continue
        inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        yield child, inner
        yield from _walk(child, inner)


@cache
def edges() -> tuple[Edge, ...]:
    """Every import edge of every physkan module."""
    out: list[Edge] = []
    for module, path in _modules().items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, lazy in _walk(tree, False):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [_target(a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, is_package, node.level, node.module)
                if base == "__future__":
                    continue
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.append(_target(full if full in _modules() else base))
            elif isinstance(node, ast.Call) and node.args:
                func = node.func
                fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                arg = node.args[0]
                if (
                    fname in ("import_module", "__import__")
                    and isinstance(arg, ast.Constant)
                    and isinstance(arg.value, str)
                    and arg.value.startswith("physkan")
                ):
                    targets = [_target(arg.value)]
            for target in dict.fromkeys(targets):
                if target != module:
                    out.append(Edge(module, target, node.lineno, lazy))
    return tuple(out)


def internal_edges() -> list[Edge]:
    """Imports of physkan modules, the composition root (as importer) left out."""
    return [
        e
        for e in edges()
        if e.source != "physkan" and (e.target == "physkan" or e.target.startswith("physkan."))
    ]


def package_cycles() -> list[str]:
    """One description per circle of the package graph (one per strongly connected part)."""
    graph: dict[str, dict[str, Edge]] = {}
    for e in internal_edges():
        a, b = package_of(e.source), package_of(e.target)
        if a != b:
            graph.setdefault(a, {}).setdefault(b, e)
    # Tarjan's strongly connected components
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    parts: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, {})):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                parts.append(sorted(part))

    for v in sorted(graph):
        if v not in index:
            visit(v)

    out = []
    for part in parts:
        members = set(part)
        for start in part:  # every shortest circle through each member, deduplicated
            cycle = _shortest_cycle(graph, start, members)
            if cycle is None:
                continue
            names = " -> ".join(package_label(p) for p in cycle + [cycle[0]])
            witness = "; ".join(
                graph[cycle[i]][cycle[(i + 1) % len(cycle)]].where() for i in range(len(cycle))
            )
            line = f"import circle {names}  [{witness}]"
            if line not in out and not any(_same_cycle(line, o) for o in out):
                out.append(line)
    return out


def _same_cycle(a: str, b: str) -> bool:
    def key(line: str) -> frozenset[str]:
        head = line.split("[")[0].replace("import circle", "")
        return frozenset(part.strip() for part in head.split(" -> "))

    return key(a) == key(b)


def _shortest_cycle(graph: dict[str, dict[str, Edge]], start: str, members: set[str]):
    from collections import deque

    prev: dict[str, str] = {}
    queue = deque([start])
    seen = {start}
    while queue:
        v = queue.popleft()
        for w in sorted(graph.get(v, {})):
            if w not in members:
                continue
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(prev[path[-1]])
                return list(reversed(path))
            if w not in seen:
                seen.add(w)
                prev[w] = v
                queue.append(w)
    return None


def package_label(pkg: str) -> str:
    return f"physkan.{pkg}" if pkg else "physkan"


def plugin_imports_from_core() -> list[str]:
    return [
        f"core imports plugins: {e.where()}"
        for e in internal_edges()
        if package_of(e.source) in CORE and package_of(e.target) == "plugins"
    ]


def upward_imports() -> list[str]:
    out = []
    for e in internal_edges():
        a, b = package_of(e.source), package_of(e.target)
        if a == b or a not in RANK:
            continue
        if b == "":
            out.append(f"imports the composition root: {e.where()}")
        elif b in RANK and RANK[b] > RANK[a]:
            out.append(f"upward import ({a} below {b}): {e.where()}")
    return out


def unplaced_packages() -> list[str]:
    return sorted(
        f"no layer for package physkan.{p}"
        for p in {package_of(m) for m in _modules()} - {""}
        if p not in RANK
    )


def bottom_imports() -> list[str]:
    out = []
    for e in internal_edges():
        pkg = package_of(e.source)
        if pkg in BOTTOM_ALLOWED and e.target not in BOTTOM_ALLOWED[pkg]:
            out.append(f"bottom module imports physkan: {e.where()}")
    return out


def heavy_serving_imports() -> list[str]:
    """Eager (module-level) imports reachable from the zoo server that load torch & co."""
    eager: dict[str, list[Edge]] = {}
    for e in edges():
        if not e.lazy:
            eager.setdefault(e.source, []).append(e)
    out = []
    for start in ZOO_SERVING:
        todo, seen = [start], {start}
        while todo:
            mod = todo.pop()
            for e in eager.get(mod, []):
                if e.target.split(".")[0] in HEAVY_EXTERNAL:
                    out.append(f"zoo serving module loads {e.target} (from {start}): {e.where()}")
                elif e.target.startswith("physkan.") or e.target == "physkan":
                    if package_of(e.target) not in LIGHT_PACKAGES:
                        out.append(
                            f"zoo serving module loads physkan.{package_of(e.target) or ''}"
                            f" (from {start}): {e.where()}"
                        )
                    # the package __init__s that importing the target runs (not the root)
                    parts = e.target.split(".")
                    for n in range(2, len(parts) + 1):
                        mod_n = ".".join(parts[:n])
                        if mod_n not in seen:
                            seen.add(mod_n)
                            todo.append(mod_n)
    return sorted(set(out))


CHECKS = {
    "cycles": package_cycles,
    "plugins": plugin_imports_from_core,
    "upward": upward_imports,
    "unplaced": unplaced_packages,
    "bottom": bottom_imports,
    "serving": heavy_serving_imports,
}


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    lines = [line for check in CHECKS.values() for line in check()]
    with contextlib.suppress(OSError):  # a read-only /tmp must not hide the real failures
        VIOLATIONS_FILE.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    yield


def _fail_on(found: list[str], what: str) -> None:
    assert not found, f"{len(found)} {what}:\n" + "\n".join(found)


def test_graph_sees_the_whole_package() -> None:
    """Guard against a silently empty graph (the other tests would pass vacuously)."""
    assert "physkan.kan.network" in _modules()
    targets = {e.target for e in internal_edges()}
    assert "physkan.kan" in targets or "physkan.kan.layer" in targets
    assert any(e.lazy for e in edges())


def test_no_import_circle_crosses_packages() -> None:
    _fail_on(package_cycles(), "import circles across packages")


def test_core_never_imports_plugins() -> None:
    _fail_on(plugin_imports_from_core(), "imports of physkan.plugins from core")


def test_imports_point_down_the_layers() -> None:
    _fail_on(upward_imports(), "imports against the layer order")


def test_every_package_has_a_layer() -> None:
    _fail_on(unplaced_packages(), "packages without a layer")


def test_bottom_modules_import_nothing_from_physkan() -> None:
    _fail_on(bottom_imports(), "imports from the bottom layer")


def test_zoo_server_stays_light() -> None:
    _fail_on(heavy_serving_imports(), "heavy imports of the zoo server")


def test_the_checker_finds_a_planted_circle(tmp_path: Path) -> None:
    """The cycle finder itself: a two-package circle on a synthetic graph."""
    graph = {
        "a": {"b": Edge("physkan.a.x", "physkan.b.y", 1, False)},
        "b": {"a": Edge("physkan.b.y", "physkan.a.x", 2, True)},
    }
    assert _shortest_cycle(graph, "a", {"a", "b"}) == ["a", "b"]
    assert _resolve("physkan.kan.basis", False, 1, "layer") == "physkan.kan.layer"
    assert _resolve("physkan.kan", True, 1, "layer") == "physkan.kan.layer"
    assert _resolve("physkan.kan.basis", False, 2, "io") == "physkan.io"
