"""The import graph of glsmonai: inference never loads the training loop, and no module imports itself back."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import glsmonai

PACKAGE_DIR = Path(glsmonai.__file__).parent


# --- the runtime check -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("glsmonai.inference", ("glsmonai.engines",)),  # prediction must not pull in Ignite training
        ("glsmonai.model_folder", ("glsmonai.engines", "glsmonai.inference")),  # sits below both
    ],
)
def test_module_does_not_load_the_training_loop(module, forbidden):
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert module in loaded
    assert [m for m in loaded if m.startswith(forbidden)] == []


# --- the static import graph -------------------------------------------------------------------------
#
# Nodes are the modules under a package directory, a package named by its __init__ (``glsmonai.engines``).
# An edge ``m -> t`` says that executing m's top level executes t's (imports inside functions run later,
# on call, and are left out; so are ``if TYPE_CHECKING:`` blocks).
#
# ``import a.b.c`` / ``from a.b import c`` runs the packages ``a`` and ``a.b`` before ``a.b.c``, so m gets an
# edge to each of them as well, *except* to m's own enclosing packages: Python initialises those before m
# starts, so when a package's __init__ imports its submodules (``glsmonai.engines -> glsmonai.engines.loss``)
# and a submodule imports a sibling (``engines.batch -> engines.loss``, which also runs ``glsmonai.engines``)
# the package is already in ``sys.modules`` and nothing loops: counting those edges would make every
# re-exporting package a "cycle". The one way back into an enclosing package that does count is reading a
# name out of it, ``from glsmonai.engines import GLSLoss`` inside ``glsmonai.engines.batch``: that works
# only if the package's __init__ happened to define the name before importing the submodule, which is the
# fragile kind of cycle this test exists to catch, as is any loop between modules such as
# ``keypoints -> evaluation.errormap -> evaluation.reports -> keypoints``.


def module_names(root: Path, package: str) -> dict[str, Path]:
    """``{dotted name: file}`` for every module under ``root`` (the directory of ``package``)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def top_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Import statements that run when the module is imported (not those in functions or TYPE_CHECKING)."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]))
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append(child)
            visit(child)

    visit(tree)
    return found


def ancestors(name: str) -> list[str]:
    """``a.b.c`` -> ``[a, a.b]``."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """``{module: modules whose top level its own top level runs}``, by the rules above."""
    modules = module_names(root, package)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        enclosing = set(ancestors(name)) | {name}
        edges = graph[name]

        def runs(target: str, enclosing: set[str] = enclosing, edges: set[str] = edges) -> None:
            """``name`` imports ``target``: that runs target and the packages above it."""
            for module in [*ancestors(target), target]:
                if module in modules and module not in enclosing:
                    edges.add(module)

        for node in top_level_imports(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    runs(alias.name)
                continue
            if node.level:  # relative import: from the module's package, up level - 1
                here = name if is_package else name.rpartition(".")[0]
                base = ".".join(here.split(".")[: len(here.split(".")) - (node.level - 1)])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            if base != package and not base.startswith(package + "."):
                continue
            runs(base)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in modules:
                    runs(submodule)
                elif base in enclosing and base != name:
                    edges.add(base)  # a name read out of a package that is still initialising
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One closed path ``[a, b, ..., a]`` per strongly connected group of more than one module (or a self-loop)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph[v]:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            connect(v)

    def closed_path(group: list[str]) -> list[str]:
        start, members = group[0], set(group)
        paths = [[start]]
        while paths:  # breadth-first: the shortest way back to start inside the group
            path = paths.pop(0)
            for w in sorted(graph[path[-1]] & members):
                if w == start:
                    return [*path, start]
                if w not in path:
                    paths.append([*path, w])
        return group

    return [closed_path(g) for g in groups]


def test_glsmonai_has_no_import_cycle():
    graph = import_graph(PACKAGE_DIR, "glsmonai")
    found = [" -> ".join(path) for path in cycles(graph)]
    assert found == [], "import cycles:\n" + "\n".join(found)


def test_the_graph_sees_the_package_layering():
    # a few edges that must be there, or the graph is not reading the imports at all
    graph = import_graph(PACKAGE_DIR, "glsmonai")
    assert "glsmonai.engines.loss" in graph["glsmonai.engines"]  # a package re-exporting its submodule
    assert "glsmonai.transforms.crop" in graph["glsmonai.engines.loss"]
    assert "glsmonai.transforms" in graph["glsmonai.engines.loss"]  # the package above the target runs first
    assert "glsmonai.engines" not in graph["glsmonai.engines.batch"]  # its own package: already initialising
    assert "glsmonai.inference" not in graph["glsmonai.cli"]  # imported inside a function


# --- the rules, on small packages written for the purpose ----------------------------------------------


def write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_reexports_and_sibling_imports_are_not_cycles(tmp_path):
    pkg = write_package(tmp_path, {
        "__init__.py": "from pkg.a import f\nfrom pkg.b import g\n",
        "a.py": "from pkg.b import g\n\ndef f():\n    return g()\n",
        "b.py": "def g():\n    return 1\n",
    })
    graph = import_graph(pkg, "pkg")
    assert graph == {"pkg": {"pkg.a", "pkg.b"}, "pkg.a": {"pkg.b"}, "pkg.b": set()}
    assert cycles(graph) == []


def test_two_modules_importing_each_other_are_a_cycle(tmp_path):
    pkg = write_package(tmp_path, {
        "__init__.py": "",
        "a.py": "from pkg.b import g\n",
        "b.py": "import pkg.c\n",
        "c.py": "from . import a\n",  # relative: pkg.a
    })
    assert cycles(import_graph(pkg, "pkg")) == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]


def test_an_import_inside_a_function_is_not_a_cycle(tmp_path):
    pkg = write_package(tmp_path, {
        "__init__.py": "",
        "a.py": "from pkg.b import g\n",
        "b.py": "def g():\n    from pkg.a import f\n    return f\n",
    })
    assert cycles(import_graph(pkg, "pkg")) == []


def test_reading_a_name_from_the_still_initialising_package_is_a_cycle(tmp_path):
    pkg = write_package(tmp_path, {
        "__init__.py": "from pkg.sub import h\n",
        "sub/__init__.py": "from pkg.sub.x import f\nh = 1\n",
        "sub/x.py": "from pkg.sub import h\n\ndef f():\n    return h\n",  # h is not defined yet
    })
    assert cycles(import_graph(pkg, "pkg")) == [["pkg.sub", "pkg.sub.x", "pkg.sub"]]


def test_a_package_whose_module_imports_back_into_the_importer_is_a_cycle(tmp_path):
    # pkg.a runs pkg.b's __init__, which runs pkg.b.y, which needs pkg.a
    pkg = write_package(tmp_path, {
        "__init__.py": "",
        "a.py": "from pkg.b.x import f\n",
        "b/__init__.py": "from pkg.b.y import g\n",
        "b/x.py": "def f():\n    return 1\n",
        "b/y.py": "from pkg.a import f\ng = f\n",
    })
    assert cycles(import_graph(pkg, "pkg")) == [["pkg.a", "pkg.b", "pkg.b.y", "pkg.a"]]
