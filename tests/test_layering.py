"""The project's own import graph has no cycle, between modules or between folders, and the library stays pure.

Every ``import`` and ``from ... import`` statement of model_code/, scripts/ and the entry points train.py,
sample.py and evaluate.py is read with ``ast``, including those inside functions (a deferred import is still
a dependency). Two graphs are built from them:

- modules: ``scripts.api -> scripts.evaluation.elbo`` when scripts/api.py imports that module (``from
  package import name`` counts as importing the submodule ``package.name`` where there is one);
- folders: in every folder, its modules and its subfolders, each subfolder taken whole, are the nodes:
  ``scripts/evaluation/ -> scripts/api.py`` when a module anywhere under scripts/evaluation/ imports
  scripts/api.py. So a folder may use the modules beside it and they may use its parts, but two folders
  (or a folder and a module) may not each use the other.

A cycle in either graph fails its test, named edge by edge with the file and line of an import making it.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Set, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("model_code", "scripts")
ENTRY_POINTS = ("train.py", "sample.py", "evaluate.py")
LIBRARY_MAY_NOT_IMPORT = ("scripts", "absl", "ml_collections")


@dataclass(frozen=True)
class Import:
    """``importer`` imports ``target`` (a dotted name, the project's or not) at ``path``:``line``."""

    importer: str
    target: str
    path: str
    line: int


Graph = Dict[str, Dict[str, Import]]  # node -> {node it imports: the first import statement making that edge}


def module_name(path: str) -> str:
    """Dotted module name of a repository-relative file: scripts/runs/__init__.py -> scripts.runs."""
    parts = os.path.splitext(path)[0].split(os.sep)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_files() -> List[str]:
    """Repository-relative paths of every Python file the graphs cover, sorted."""
    paths = list(ENTRY_POINTS)
    for package in PACKAGES:
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            paths += [os.path.relpath(os.path.join(folder, f), ROOT) for f in files if f.endswith(".py")]
    return sorted(paths)


def imported_names(node: ast.AST, importer: str, is_package: bool) -> List[str]:
    """The dotted names one import statement names: ``import a.b`` -> [a.b]; ``from a import b, c`` ->
    [a.b, a.c] (``resolve`` finds the module among them); relative imports resolved against ``importer``."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = importer if is_package else importer.rpartition(".")[0]
    for _ in range(node.level - 1):
        base = base.rpartition(".")[0]
    prefix = ".".join(part for part in (base if node.level else "", node.module or "") if part)
    return [f"{prefix}.{alias.name}" for alias in node.names]


def read_imports(paths: Sequence[str]) -> List[Import]:
    """Every import statement of the files, at any depth (module level, functions, classes, branches)."""
    imports = []
    for path in paths:
        with open(os.path.join(ROOT, path), encoding="utf-8") as source:
            tree = ast.parse(source.read(), filename=path)
        importer = module_name(path)
        is_package = os.path.basename(path) == "__init__.py"
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = imported_names(node, importer, is_package)
                imports += [Import(importer, name, path, node.lineno) for name in names]
    return imports


def resolve(target: str, modules: Set[str]) -> Optional[str]:
    """The project module ``target`` names: itself, else its longest prefix that is a module (``from a import
    name`` names ``a.name``, an attribute of module ``a``); None outside the project."""
    while target:
        if target in modules:
            return target
        target = target.rpartition(".")[0]
    return None


def module_graph(imports: Sequence[Import], modules: Set[str]) -> Graph:
    """Module -> the project modules it imports (a module importing itself is no edge)."""
    graph: Graph = {module: {} for module in modules}
    for statement in imports:
        target = resolve(statement.target, modules)
        if target is not None and target != statement.importer:
            graph[statement.importer].setdefault(target, statement)
    return graph


def unit_of(path: str, other: str) -> str:
    """What file ``path`` counts as in the innermost folder holding both it and ``other``: the file itself
    (``scripts/api.py``), or the subfolder of that folder it is in (``scripts/evaluation/``)."""
    parts, other_parts = path.split(os.sep), other.split(os.sep)
    shared = 0
    while shared < min(len(parts), len(other_parts)) - 1 and parts[shared] == other_parts[shared]:
        shared += 1
    return "/".join(parts[: shared + 1]) + ("/" if shared + 1 < len(parts) else "")


def folder_graph(graph: Graph, paths: Dict[str, str]) -> Graph:
    """The module graph seen folder by folder: each import is an edge of the innermost folder holding both
    files, between the modules or subfolders of that folder the two files are in (``paths``: module -> file)."""
    folders: Graph = {}
    for importer, targets in sorted(graph.items()):
        for target, statement in sorted(targets.items()):
            source, destination = unit_of(paths[importer], paths[target]), unit_of(paths[target], paths[importer])
            folders.setdefault(source, {}).setdefault(destination, statement)
            folders.setdefault(destination, {})
    return folders


def find_cycle(graph: Graph) -> Optional[List[str]]:
    """One cycle [a, b, ..., a] of the graph (depth first, nodes and edges in sorted order), or None."""
    state: Dict[str, str] = {}  # "open" while on the current path, "done" once every path from it is checked
    path: List[str] = []

    def visit(node: str) -> Optional[List[str]]:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return path[path.index(target) :] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def describe(cycle: Sequence[str], graph: Graph) -> str:
    """One line per edge of the cycle: ``a -> b  (file:line: imports name)``."""
    lines = []
    for source, target in zip(cycle, cycle[1:]):
        statement = graph[source][target]
        lines.append(f"  {source} -> {target}  ({statement.path}:{statement.line}: imports {statement.target})")
    return "\n".join(lines)


def project_graphs() -> Tuple[Graph, Graph, List[Import]]:
    """(module graph, folder graph, every import statement) of the project as it is on disk."""
    files = project_files()
    paths = {module_name(path): path for path in files}
    imports = read_imports(files)
    modules = module_graph(imports, set(paths))
    return modules, folder_graph(modules, paths), imports


def test_no_import_cycle_between_modules():
    graph, _, _ = project_graphs()
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle between modules:\n" + describe(cycle, graph)


def test_no_import_cycle_between_folders():
    _, graph, _ = project_graphs()
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle between folders:\n" + describe(cycle, graph)


def test_the_library_imports_neither_scripts_nor_absl_nor_ml_collections():
    _, _, imports = project_graphs()
    forbidden = [
        f"{statement.path}:{statement.line}: imports {statement.target}"
        for statement in imports
        if statement.importer.split(".")[0] == "model_code" and statement.target.split(".")[0] in LIBRARY_MAY_NOT_IMPORT
    ]
    assert not forbidden, "model_code/ imports what it may not:\n" + "\n".join(forbidden)


def test_the_reader_sees_deferred_relative_and_submodule_imports():
    tree = ast.parse("import os.path\nfrom . import sibling\ndef f():\n    from ..up import thing\n")
    names = [
        name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for name in imported_names(node, "scripts.data.datasets", is_package=False)
    ]
    assert sorted(names) == ["os.path", "scripts.data.sibling", "scripts.up.thing"]
    modules = {"scripts.data.datasets", "scripts.data.sibling", "scripts.up"}
    assert resolve("scripts.up.thing", modules) == "scripts.up" and resolve("numpy.linalg", modules) is None


def test_folder_units_and_cycles_on_a_small_graph():
    join = os.path.join
    assert unit_of(join("scripts", "evaluation", "fid.py"), join("scripts", "api.py")) == "scripts/evaluation/"
    assert unit_of(join("scripts", "api.py"), join("scripts", "evaluation", "fid.py")) == "scripts/api.py"
    assert unit_of(join("scripts", "data", "a.py"), join("scripts", "data", "b.py")) == "scripts/data/a.py"
    assert unit_of("train.py", join("scripts", "api.py")) == "train.py"
    paths = {"a": join("p", "a.py"), "b": join("p", "q", "b.py"), "c": join("p", "q", "c.py")}
    graph = {"a": {"b": Import("a", "b", "a.py", 1)}, "b": {"c": Import("b", "c", "b.py", 2)}, "c": {}}
    assert find_cycle(graph) is None and find_cycle(folder_graph(graph, paths)) is None
    graph["c"]["a"] = Import("c", "a", "c.py", 3)  # p/a.py -> p/q/b.py -> p/q/c.py -> p/a.py
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle(folder_graph(graph, paths)) == ["p/a.py", "p/q/", "p/a.py"]
    del graph["b"]["c"]  # no module cycle left, but p/q/ and p/a.py still use each other
    assert find_cycle(graph) is None and find_cycle(folder_graph(graph, paths)) == ["p/a.py", "p/q/", "p/a.py"]
