"""The package as a user installs it: ``pip install .`` gives importable packages that find their data
from any working directory (clear_core/paths.py), and the checkout works from another folder too."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "requirements.txt", "README.md", "clear_core", "analysis", "app", "assets")
"""What a wheel is built from (everything pyproject.toml names)."""
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")
PROBE = """
import json, clear_core, clear_core.paths as paths
from clear_core.concepts import load_builtin, load_implicit, unrelated_prompts
from clear_core.packs import PACKS
from clear_core.testbed.pipeline import ASSETS, check_vocabulary
from app.concept_tab import pack_choices
print(json.dumps({
    "package": clear_core.__file__,
    "assets": str(paths.ASSETS_DIR),
    "pairs": len(load_builtin("parachute")),
    "implicit": len(load_implicit("parachute")[0]),
    "unrelated": len(unrelated_prompts()),
    "testbed": (ASSETS / "transformer" / "config.json").is_file(),
    "packs": len(pack_choices()),
    "pack_files": len(PACKS),
    "vocabulary_matches": check_vocabulary(ASSETS) is None,
}))
"""


def _probe(python: str, cwd: Path, env: dict[str, str]) -> dict:
    import json

    out = subprocess.run([python, "-c", PROBE], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def test_pyproject_lists_every_package():
    """setuptools installs only the packages pyproject.toml names: a new subpackage left off the list
    is missing from an install (and ``python -m clear_core`` then drops its commands without a word)."""
    tomllib = pytest.importorskip("tomllib")  # Python ≥ 3.11

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for root in ("clear_core", "analysis", "app")
        for init in (ROOT / root).rglob("__init__.py")
    }
    assert found - listed == set(), "packages missing from pyproject.toml"
    assert listed - found == {"clear_core.assets"}


def test_checkout_finds_its_data_from_another_folder(tmp_path):
    found = _probe(sys.executable, tmp_path, {**_clean_env(), "PYTHONPATH": str(ROOT)})
    assert found["assets"] == str(ROOT / "assets")
    assert (found["pairs"], found["implicit"], found["unrelated"]) == (240, 24, 124)
    assert found["testbed"] and found["packs"] == found["pack_files"] == 21
    assert found["vocabulary_matches"], "the testbed's caption vocabulary is not the one it was trained on"


@pytest.mark.slow
def test_installed_wheel_runs_from_another_folder(tmp_path):
    """Build the wheel, install it (without dependencies: they are this interpreter's) into a fresh
    venv and read every kind of shipped data from a folder with no checkout in sight."""
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info into the source tree
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=IGNORED)
        else:
            shutil.copy2(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = wheels.glob("clear_workbench-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=True)
    python = str(env_dir / "bin" / "python")
    install = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    found = _probe(python, elsewhere, _clean_env())
    site = env_dir / "lib"
    assert Path(found["package"]).is_relative_to(site), found["package"]
    assert Path(found["assets"]) == Path(found["package"]).parent / "assets"
    assert (found["pairs"], found["implicit"], found["unrelated"]) == (240, 24, 124)
    assert found["testbed"] and found["packs"] == found["pack_files"] == 21
    assert found["vocabulary_matches"], "assets/packs or assets/testbed/captions.json missing from the wheel"
