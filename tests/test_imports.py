"""The package's import graph: no cycles, and lower layers never import upper ones (docs/layout.md).

Every ``import`` statement counts, module-level or inside a function: a function-local import that closes a cycle is
still a cycle (it only moves the failure from import time to call time). The graph comes from grimp, which reads the
source statically, as a type checker does.
"""
from __future__ import annotations

import graphlib

import pytest

grimp = pytest.importorskip("grimp", reason="grimp is a test dependency (pip install -e .[test] or .[all])")

PACKAGE = "afnet_edge"
# Lower layers (model code) and the upper layers that must never be imported from them.
LOWER = ("afnet_edge.models", "afnet_edge.layers", "afnet_edge.kernels")
UPPER = ("afnet_edge.bench", "afnet_edge.export", "afnet_edge.cli", "afnet_edge.cli_args", "afnet_edge.training",
         "afnet_edge.predict", "afnet_edge.demo", "afnet_edge.model_commands", "afnet_edge.serve")


@pytest.fixture(scope="module")
def graph():
    g = grimp.build_graph(PACKAGE)
    # `from .. import _C` loads the compiled extension, not the package: grimp (reading .py files only) records it as
    # an import of `afnet_edge` itself. Point it at the extension module instead.
    g.add_module(f"{PACKAGE}._C")
    for importer in list(g.find_modules_that_directly_import(PACKAGE)):
        details = g.get_import_details(importer=importer, imported=PACKAGE)
        if details and all("_C" in d["line_contents"] and "import" in d["line_contents"] for d in details):
            g.remove_import(importer=importer, imported=PACKAGE)
            g.add_import(importer=importer, imported=f"{PACKAGE}._C")
    return g


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_graph_sees_the_whole_package(graph):
    mods = graph.modules
    # export is reached through the committed link afnet_edge/export -> ../export, bench and training are packages
    for expected in ("afnet_edge.export.onnx_export", "afnet_edge.models.registry", "afnet_edge.kernels.reference",
                     "afnet_edge.cli", "afnet_edge.cli_args"):
        assert expected in mods, f"{expected} missing from the import graph: {sorted(mods)}"


def test_no_import_cycles(graph):
    deps = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    try:
        tuple(graphlib.TopologicalSorter(deps).static_order())
    except graphlib.CycleError as e:
        cycle = e.args[1]
        lines = []
        for a, b in zip(cycle[1:], cycle[:-1]):  # CycleError lists the cycle with each node depending on the next
            for d in graph.get_import_details(importer=a, imported=b):
                lines.append(f"  {a}:{d['line_number']}: {d['line_contents']}")
        pytest.fail("import cycle " + " -> ".join(reversed(cycle)) + "\n" + "\n".join(lines))


def test_lower_layers_never_import_upper_ones(graph):
    bad = []
    for lower in sorted(m for m in graph.modules if _within(m, LOWER)):
        for imported in graph.find_modules_directly_imported_by(lower):
            if _within(imported, UPPER):
                for d in graph.get_import_details(importer=lower, imported=imported):
                    bad.append(f"{lower}:{d['line_number']}: {d['line_contents']}")
    assert not bad, "lower layers import upper ones:\n" + "\n".join(bad)


def test_nothing_imports_the_dispatcher(graph):
    importers = sorted(graph.find_modules_that_directly_import("afnet_edge.cli"))
    assert importers == [], f"afnet_edge.cli is the dispatcher; import helpers from afnet_edge.cli_args: {importers}"


def test_command_modules_lists_every_command_module(graph):
    from afnet_edge.cli import COMMAND_MODULES
    registering = set()
    for mod in graph.modules:
        if mod == "afnet_edge.cli" or mod.startswith("afnet_edge._"):
            continue
        module = __import__(mod, fromlist=["_"])
        if callable(getattr(module, "register", None)) and getattr(module.register, "__module__", None) == mod:
            registering.add(mod)
    assert registering == set(COMMAND_MODULES), (
        f"modules with register(subparsers) {sorted(registering)} != COMMAND_MODULES {sorted(COMMAND_MODULES)}")
