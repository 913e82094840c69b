r"""The layout of the package, read from its source: no import circle, and the command
modules (`flowscan.cli.*`) imported by nothing but the command-line entry point."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "flowscan"


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path) -> set[str]:
    r"""The flowscan modules a file imports, anywhere in it (lazy imports included): `from
    .a import b` counts as `a.b` where that is a module, else as `a`."""
    is_package = path.name == "__init__.py"
    here = _module(path).split(".") if path.is_relative_to(PACKAGE) else []
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here if is_package else here[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *filter(None, [node.module])])
            for alias in node.names:
                name = f"{base}.{alias.name}"
                out.add(name if name in MODULES else base)
    return {m for m in out if m in MODULES}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    r"""A cycle of `graph`, or `None` (depth-first search)."""
    state, stack = {}, []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


GRAPH = {m: _imports(p) - {m} for m, p in MODULES.items()}


def _room(module: str) -> str:
    return ".".join(module.split(".")[:2])  # flowscan.<subpackage or module>


def test_no_import_circle_between_modules():
    assert _cycle(GRAPH) is None


def test_no_import_circle_between_subpackages():
    rooms = {}
    for module, imported in GRAPH.items():
        rooms.setdefault(_room(module), set()).update(
            _room(m) for m in imported if _room(m) != _room(module)
        )
    assert _cycle(rooms) is None
    # the statistics build on the fitting, never the reverse (pyhf's infer/ and optimize/)
    assert "flowscan.stats" in rooms["flowscan.studies"] | rooms["flowscan.cli"]
    assert "flowscan.stats" not in rooms["flowscan.scanner"]


def test_command_modules_are_imported_by_the_entry_point_only():
    users = sorted(
        m for m, imported in GRAPH.items()
        if not m.startswith("flowscan.cli") and any(i.startswith("flowscan.cli") for i in imported)
    )  # fmt: skip
    assert users == []
    outside = [*ROOT.glob("tests/*.py"), *ROOT.glob("benchmarks/*.py")]
    for path in outside:
        commands = {m for m in _imports(path) if m.startswith("flowscan.cli.")}
        assert not commands, f"{path.name} imports command modules {commands}"


def test_the_checks_see_a_circle_and_a_command_import():
    r"""The checks above can fail: a graph with a circle, and this file's own view of
    `flowscan.cli.scan` importing `flowscan.scanner`."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert "flowscan.scanner" in GRAPH["flowscan.cli.scan"]
    assert "flowscan.samples.lhco" in GRAPH["flowscan.cli.train"] or (
        "flowscan.samples" in GRAPH["flowscan.cli.train"]
    )
