"""The import layers: the product never reaches up into research code, and no module imports one on a
higher layer (every import, at module level or inside a function, read from the source with ``ast``).

Layers, bottom to top: the engine (``clear_core`` modules outside the sub-packages below) < the CPU
testbed (``clear_core.testbed``) < a search run (``clear_core.workflow``, which can calibrate γ on the
testbed's frames), generation and video evaluation (``clear_core.generation``, ``clear_core.video_eval``)
< Ray fan-out (``clear_core.fanout``) < ``analysis`` < the command lines (``clear_core.__main__``,
``*.cli``, ``*_cli``) and the app (``app``) < ``research``, ``bench``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("clear_core", "analysis", "app")
OUTSIDE = ("research", "bench", "tests")


def layer(module: str) -> int:
    """Rank of a module's layer (higher may import lower or equal, never higher)."""
    parts = module.split(".")
    top = parts[0]
    if top in OUTSIDE:
        return 7
    if top == "app" or parts[-1] in ("__main__", "cli") or parts[-1].endswith("_cli"):
        return 6
    if top == "analysis":
        return 5
    sub = parts[1] if len(parts) > 1 else ""
    return {"fanout": 4, "generation": 3, "video_eval": 3, "workflow": 3, "testbed": 2}.get(sub, 1)


def imports(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, imported module) for every absolute or relative import of a project module."""
    package = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            name = ".".join([*base, node.module] if node.module else base)
            names = [name] if node.module else [f"{name}.{alias.name}" for alias in node.names]
        else:
            continue
        found += [(node.lineno, name) for name in names if name.split(".")[0] in PRODUCT + OUTSIDE]
    return found


def modules() -> list[tuple[Path, str]]:
    out = []
    for top in PRODUCT:
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            out.append((path, ".".join(parts)))
    return out


def test_the_layer_rule_is_what_the_docstring_says():
    assert (
        layer("clear_core.erasure")
        < layer("clear_core.testbed.pipeline")
        < layer("clear_core.generation.render")
    )
    assert (
        layer("clear_core.testbed.calibrate")
        < layer("clear_core.workflow")
        < layer("clear_core.fanout.engine")
    )
    assert (
        layer("clear_core.generation.render")
        < layer("clear_core.fanout.engine")
        < layer("analysis.layer_map")
    )
    assert (
        layer("analysis.layer_map")
        < layer("clear_core.__main__")
        == layer("clear_core.testbed.cli")
        == layer("app.layout")
    )
    assert layer("clear_core.fanout.sweep_cli") == layer("clear_core.__main__")
    assert layer("app.layout") < layer("research.concepts21")


@pytest.mark.parametrize("path,module", modules(), ids=lambda v: v if isinstance(v, str) else "")
def test_no_import_reaches_a_higher_layer(path, module):
    rank = layer(module)
    upward = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for line, name in imports(path, module)
        if layer(name) > rank
    ]
    assert not upward, "; ".join(upward)


def test_the_checker_sees_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from research.concepts21 import main\n    from ..app import layout\n")
    found = imports(bad, "clear_core.testbed.bad")
    assert (2, "research.concepts21") in found and (3, "clear_core.app") in found
    assert layer("research.concepts21") > layer("clear_core.testbed.bad")
