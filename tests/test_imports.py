"""The import graph of glsmonai: inference never loads the training loop, no module imports itself back, and
no module imports from a layer above its own (docs/architecture.md), not even inside a function."""

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


def import_base(node: ast.ImportFrom, name: str, is_package: bool) -> str:
    """The absolute module ``from X import ...`` reads from, in module ``name`` (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    here = name if is_package else name.rpartition(".")[0]  # from the module's package, up level - 1
    base = ".".join(here.split(".")[: len(here.split(".")) - (node.level - 1)])
    return f"{base}.{node.module}" if node.module else base


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
            base = import_base(node, name, is_package)
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


# --- the layers ------------------------------------------------------------------------------------------
#
# docs/architecture.md: cli.py and the bundle configs use the package; engines/ and inference use
# model_folder.py, stages.py, networks/, transforms/ and data/; nothing in data/, transforms/ or networks/
# knows about stages, engines or the command line; inference imports nothing from engines/. Measuring and
# scoring each sit on data/ and know nothing of each other, of the networks or of prediction; experiments
# (training, predicting and scoring many models) sit on everything but the command line.
#
# Every import counts here, at any depth (inside a function, under ``if TYPE_CHECKING:``): an import that
# runs late still makes the lower layer know the upper one. Modules that do not exist yet may be named.

#: dotted name (a module, or a package and everything under it) -> its layer; the longest name wins
LAYER_OF = {
    "glsmonai": "package",  # __init__: the version, logging; everything may read it
    "glsmonai.utils": "base",
    "glsmonai.keypoints": "base",
    "glsmonai.precision": "base",
    "glsmonai.resources": "base",
    "glsmonai.visualize": "base",
    "glsmonai.data": "data",
    "glsmonai.transforms": "transforms",
    "glsmonai.networks": "networks",
    "glsmonai.stages": "stages",
    "glsmonai.model_folder": "model_folder",
    "glsmonai.engines": "engines",
    "glsmonai.inference": "inference",  # the module, or the package it is becoming
    "glsmonai.export": "inference",  # exported engines serve predict; export.py is being split
    "glsmonai.measure": "measure",
    "glsmonai.evaluation": "evaluation",
    "glsmonai.experiments": "experiments",
    "glsmonai.bench": "application",
    "glsmonai.cli": "application",
    "glsmonai.review": "application",  # glsmonai review: a web app on the predictor, measures and scoring
    "glsmonai.__main__": "application",
}

_BASE = {"package", "base"}
_MODEL = _BASE | {"data", "transforms", "networks", "stages", "model_folder"}
#: layer -> the other layers its modules may import (a module may always import its own layer)
MAY_IMPORT = {
    "package": set(),
    "base": {"package"},
    "data": _BASE,
    "transforms": _BASE | {"data"},
    "networks": _BASE | {"data", "transforms"},
    "stages": _BASE | {"data", "transforms", "networks"},
    "model_folder": _BASE | {"data", "transforms", "networks", "stages"},
    "engines": _MODEL,
    "inference": _MODEL,  # never engines: prediction does not load the training loop
    "measure": _BASE | {"data"},
    "evaluation": _BASE | {"data"},
    "experiments": _MODEL | {"engines", "inference", "measure", "evaluation"},
    "application": _MODEL | {"engines", "inference", "measure", "evaluation", "experiments"},
}


def layer_of(module: str, layers: dict[str, str] = LAYER_OF) -> str | None:
    """The layer of ``module``: that of the longest name in ``layers`` that is it or a package above it (the
    top package's own entry holds its ``__init__`` alone, so that a new module must be given a layer)."""
    for name in [module, *reversed(ancestors(module)[1:])]:
        if name in layers:
            return layers[name]
    return None


def all_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement of a module, at any depth."""
    return [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]


def imported_modules(node: ast.Import | ast.ImportFrom, name: str, is_package: bool, known: set[str]) -> list[str]:
    """The modules an import statement in module ``name`` reads (``from a import b``: ``a.b`` when that is a
    module or a name in ``known``, else ``a``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = import_base(node, name, is_package)
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]


def layer_violations(root: Path, package: str, layers: dict[str, str] = LAYER_OF,
                     may_import: dict[str, set[str]] = MAY_IMPORT) -> list[str]:
    """One line per import of a layer that its module's layer may not import, and per module no layer holds."""
    modules = module_names(root, package)
    known = set(modules) | set(layers)
    found = []
    for name, path in modules.items():
        source = layer_of(name, layers)
        if source is None:
            found.append(f"{path}: {name} is in no layer (add it to the layer table)")
            continue
        for node in all_imports(ast.parse(path.read_text(), filename=str(path))):
            for target in imported_modules(node, name, path.name == "__init__.py", known):
                if target != package and not target.startswith(package + "."):
                    continue
                layer = layer_of(target, layers)
                if layer is None:
                    found.append(f"{path}:{node.lineno}: {name} imports {target}, which is in no layer")
                elif layer != source and layer not in may_import[source]:
                    found.append(f"{path}:{node.lineno}: {name} ({source}) imports {target} ({layer})")
    return found


def test_the_layer_table_names_every_layer():
    assert set(LAYER_OF.values()) == set(MAY_IMPORT)
    for layer, allowed in MAY_IMPORT.items():
        assert allowed <= set(MAY_IMPORT) and layer not in allowed, layer
        # a layer's imports may import only what it may itself: no way up through a lower layer
        assert all(MAY_IMPORT[below] <= allowed for below in allowed), layer


def test_no_module_imports_from_a_layer_above_its_own():
    found = layer_violations(PACKAGE_DIR, "glsmonai")
    assert found == [], "imports against the layers of docs/architecture.md:\n" + "\n".join(found)


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


def test_an_upward_import_inside_a_function_breaks_the_layers(tmp_path):
    # the data layer reaching up to measure/ only when a function runs, as data/synth/writer.py once did, in
    # each spelling: absolute, relative, a package's name read from above, and for type hints only
    files = {
        "__init__.py": "",
        "utils.py": "",
        "data/__init__.py": "",
        "data/synth/__init__.py": "",
        "data/synth/writer.py": (
            "from glsmonai.utils import atomic_write\n\n"
            "def write_true_measures(kind, truths, path):\n"
            "    from glsmonai.measure.table import truth_table\n"
            "    return truth_table(kind, truths)\n"
        ),
        "data/synth/relative.py": "class Writer:\n    def write(self):\n        from ...measure import table\n",
        "data/synth/hints.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from glsmonai import measure\n",
        "measure/__init__.py": "",
        "measure/table.py": "from glsmonai.data.synth.writer import write_true_measures\n",  # down: allowed
    }
    for name, text in files.items():
        path = tmp_path / "glsmonai" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    root = tmp_path / "glsmonai"
    assert cycles(import_graph(root, "glsmonai")) == []  # no circle: the old test saw nothing wrong
    assert sorted(layer_violations(root, "glsmonai")) == [
        f"{root / 'data/synth/hints.py'}:3: glsmonai.data.synth.hints (data) imports glsmonai.measure (measure)",
        f"{root / 'data/synth/relative.py'}:3: glsmonai.data.synth.relative (data) imports glsmonai.measure.table (measure)",
        f"{root / 'data/synth/writer.py'}:4: glsmonai.data.synth.writer (data) imports glsmonai.measure.table (measure)",
    ]


def test_inference_may_not_import_engines_even_late_and_unknown_modules_are_named(tmp_path):
    root = write_package(tmp_path, {
        "__init__.py": "",
        "inference/__init__.py": "def run():\n    import pkg.engines.workflow\n",
        "engines/__init__.py": "",
        "engines/workflow.py": "from pkg.inference import run\n",  # side by side: neither uses the other
        "stray.py": "",
    })
    layers = {"pkg": "package", "pkg.inference": "inference", "pkg.engines": "engines"}
    assert sorted(layer_violations(root, "pkg", layers)) == [
        f"{root / 'engines/workflow.py'}:1: pkg.engines.workflow (engines) imports pkg.inference (inference)",
        f"{root / 'inference/__init__.py'}:2: pkg.inference (inference) imports pkg.engines.workflow (engines)",
        f"{root / 'stray.py'}: pkg.stray is in no layer (add it to the layer table)",
    ]
