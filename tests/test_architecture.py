"""The shape of the code: no import circle among lettingo's modules, and no module too long to read.

Module-level imports only (an import inside a function, or under ``if TYPE_CHECKING:``, runs late
and cannot make a circle at import time). ``from lettingo.pipeline import align`` counts as an import
of ``lettingo.pipeline.align``; importing a submodule from outside its package also runs the
package's ``__init__`` first, so it counts as an import of the package too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import lettingo

ROOT = Path(lettingo.__file__).parent
MAX_LINES = 500


def module_files() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = ("lettingo", *path.relative_to(ROOT).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in modules else base)
    for target in list(found):  # the packages above an imported submodule run first (outside them)
        parts = target.split(".")
        for depth in range(2, len(parts)):
            parent = ".".join(parts[:depth])
            if not (name == parent or name.startswith(parent + ".")):
                found.add(parent)
    return (found & set(modules)) - {name}


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            members = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                members.append(member)
                if member == node:
                    break
            if len(members) > 1:
                circles.append(sorted(members))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return circles


def test_the_checker_finds_a_circle():
    assert import_circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_among_lettingo_modules():
    modules = module_files()
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    assert graph["lettingo.pipeline"] >= {"lettingo.pipeline.stages"}  # the checker sees imports
    assert import_circles(graph) == []


def test_no_module_runs_past_500_lines():
    long = {name: n for name, path in module_files().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}, f"split these modules: {long}"


def test_every_module_imports_first():
    """Each module imported first, in a fresh interpreter state: an import circle the checker above
    missed would fail here with "partially initialized module"."""
    import subprocess
    import sys

    script = (
        "import importlib, sys\n"
        "failed = []\n"
        "for name in sys.argv[1:]:\n"
        "    for loaded in [m for m in sys.modules if m == 'lettingo' or m.startswith('lettingo.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError as exc:\n"
        "        failed.append(f'{name}: {exc}')\n"
        "print('\\n'.join(failed))\n"
    )
    names = sorted(n for n in module_files() if not n.startswith("lettingo.reporting.templates"))
    out = subprocess.run([sys.executable, "-c", script, *names], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == ""


def context_state_reads(source: str) -> list[str]:
    """``ctx.cfg`` / ``ctx.items`` / ``self.ctx.cfg`` ... reads: run state looked up on the context."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in ("cfg", "items", "run_dir"):
            owner = node.value
            name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
            if name in ("ctx", "context"):
                found.append(f"line {node.lineno}: {name}.{node.attr}")
    return sorted(found)


def test_the_context_reader_finds_state_reads():
    assert context_state_reads("a = ctx.cfg.dataset\nb = self.ctx.items\nc = ctx.llm(x)\nd = cfg.items()") == [
        "line 1: ctx.cfg", "line 2: ctx.items"]


def test_components_get_run_data_explicitly_and_the_context_holds_services_only():
    """Components read their own settings and the RunData they are handed, never run state off the
    context (lettingo/ and the first-party plugins alike)."""
    from lettingo.components import Context

    context = Context(cache=None)
    assert not any(hasattr(context, name) for name in ("cfg", "items", "run_dir"))
    files = [*ROOT.rglob("*.py"), *ROOT.parent.glob("plugins/*/lettingo_*/*.py")]
    reads = {str(path.relative_to(ROOT.parent)): found for path in files
             if (found := context_state_reads(path.read_text(encoding="utf-8")))}
    assert reads == {}
