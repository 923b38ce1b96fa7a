"""The package's shape: its layers, each importing only its own and lower ones; no import circle between modules
(counting imports inside functions too: a lazy import that only hides a circle is still one); short functions; a
small top level."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

GAN = Path(__file__).resolve().parents[1] / "gan"


def module_name(path: Path) -> str:
    parts = path.relative_to(GAN.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The gan modules that a file imports anywhere in it (module level or inside functions)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.update(c for c in [target, *(f"{target}.{a.name}" for a in node.names)] if c in modules)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
    return found - {name}


# gan/'s layers, lowest first (each subpackage's docstring says which it is). A module may import modules of its own
# layer and of lower ones, never of a higher one. Every module of gan/ is in exactly one layer or is an entry point.
LAYERS = [
    ("core", ["gan.errors", "gan.version", "gan.config", "gan.model_files", "gan.hub", "gan.models", "gan.inference",
              "gan.sampling", "gan.data"]),
    ("quality", ["gan.quality"]),
    ("sharing", ["gan.sharing"]),
    ("train", ["gan.train"]),
    ("explore", ["gan.explore"]),
    ("serve", ["gan.serve", "gan.quiz"]),
    ("tools", ["gan.tools"]),
]
# Entry points sit above every layer and nothing in gan/ imports them: the package's public facade, the `python -m`
# forwarders kept for documented commands, and __main__ modules.
FORWARDERS = ["gan.evaluate", "gan.sample", "gan.space", "gan.neighbours", "gan.invert", "gan.directions"]
ENTRY_POINTS = {"gan", "gan.hub.__main__", "gan.quiz.__main__", *FORWARDERS}
MAX_TOP_LEVEL_MODULES = 15  # gan/*.py, __init__.py included
MAX_FUNCTION_LINES = 60


def layer_of(module: str) -> int:
    """The rank of a module's layer (0 = core); KeyError for a module no layer names."""
    for rank, (_, members) in enumerate(LAYERS):
        if any(module == m or module.startswith(m + ".") for m in members):
            return rank
    raise KeyError(module)


def import_graph() -> dict[str, set[str]]:
    files = {module_name(path): path for path in GAN.rglob("*.py")}
    modules = set(files)
    return {name: imported_modules(path, modules) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle_in_the_package():
    graph = import_graph()
    assert {"gan.hub", "gan.model_files", "gan.models", "gan.sharing.card", "gan.sharing.publish"} <= set(graph)
    assert cycles(graph) == []


def test_the_circle_finder_finds_circles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_file_format_and_the_hub_do_not_reach_up():
    """The file format needs no networking, and the Hub layer knows neither the models nor the model card."""
    graph = import_graph()
    assert not graph["gan.model_files"] & {"gan.hub", "gan.models", "gan.sharing.card", "gan.sharing.publish"}
    assert not graph["gan.hub"] & {"gan.models", "gan.sharing.card", "gan.sharing.publish"}


def test_every_module_belongs_to_one_layer_or_is_an_entry_point():
    graph = import_graph()
    placed = {m: layer_of(m) for m in graph if m not in ENTRY_POINTS}  # raises KeyError for an unplaced module
    assert placed and set(graph) - set(placed) == ENTRY_POINTS


def test_no_module_imports_a_higher_layer_or_an_entry_point():
    graph = import_graph()
    upward = sorted(f"{module} ({LAYERS[layer_of(module)][0]}) -> {target}"
                    for module, targets in graph.items() if module not in ENTRY_POINTS
                    for target in targets if target in ENTRY_POINTS or layer_of(target) > layer_of(module))
    assert upward == []
    assert not any(set(graph[m]) & ENTRY_POINTS for m in ENTRY_POINTS - {"gan"}), "entry points import no others"


def test_the_layer_rule_catches_an_upward_import():
    assert layer_of("gan.models") < layer_of("gan.quality.metrics") < layer_of("gan.train.loop")
    assert layer_of("gan.quiz.rounds") == layer_of("gan.serve.demo") < layer_of("gan.tools.space")
    with pytest.raises(KeyError):
        layer_of("gan.unplaced")


def test_no_module_imports_another_modules_private_names():
    """A leading underscore means "this module's own": another module that needs it should get a public name."""
    private = []
    for path in GAN.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                private += [f"{path.relative_to(GAN.parent)}: {a.name}" for a in node.names
                            if a.name.startswith("_") and not a.name.startswith("__")]
    assert private == []


def test_forwarders_only_forward_to_their_command():
    for name in FORWARDERS:
        path = GAN / f"{name.split('.')[-1]}.py"
        tree = ast.parse(path.read_text())
        imports = [node for node in tree.body if isinstance(node, ast.ImportFrom)]
        assert len(imports) == 1 and [a.name for a in imports[0].names] == ["main"], path
        assert len(path.read_text().splitlines()) <= 8, path


def test_the_top_level_is_small():
    top = sorted(p.name for p in GAN.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_no_function_is_longer_than_a_screen():
    long = []
    for path in [*GAN.rglob("*.py"), GAN.parent / "app.py", GAN.parent / "train.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.name}:{node.name} ({lines} lines)")
    assert long == []
