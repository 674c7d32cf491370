"""Pack files (assets/packs, clear_core/pack_files.py): every shipped file loads, a broken one is refused
with a one-line message naming the file and the field, and a pack in another folder is built without
touching Python."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from clear_core.pack_files import PACKS_DIR, SHARED_FILE, load_pack_files, load_shared
from clear_core.packs import CATEGORIES, IMPLICIT, PACKS, generate_pairs, load_packs, main


def test_every_shipped_pack_file_loads():
    files = load_pack_files()
    assert sorted(f.spec["slug"] for f in files) == sorted(PACKS)
    for f in files:
        assert f.path.name == f"{f.spec['slug']}.json"
        assert len(f.implicit) >= 24
    specs, implicit = load_packs(PACKS_DIR)
    assert specs == PACKS and implicit == IMPLICIT
    ranks = [CATEGORIES.index(s.category) for s in PACKS.values()]
    assert ranks == sorted(ranks), "packs are ordered by category"


@pytest.fixture
def packs(tmp_path) -> Path:
    """A copy of the shipped pack folder to break."""
    folder = tmp_path / "packs"
    shutil.copytree(PACKS_DIR, folder)
    return folder


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("templates"), r"parachute\.json: missing field\(s\) 'templates'"),
        (lambda d: d.pop("implicit"), r"parachute\.json: missing field\(s\) 'implicit'"),
        (lambda d: d.update(forms="a kite"), r"parachute\.json: field 'forms' must be a list of strings"),
        (lambda d: d.update(scenes=["a desert", 3]), r"parachute\.json: field 'scenes': item 2 must be"),
        (lambda d: d.update(templates=[["{c} in {scene}"]]), r"parachute\.json: field 'templates': item 1"),
        (lambda d: d.update(name=""), r"parachute\.json: field 'name' must be a non-empty string"),
        (lambda d: d.update(colour=["red"]), r"parachute\.json: unknown field\(s\) \['colour'\]"),
        (
            lambda d: d.update(shots={"shared": "nope"}),
            r"parachute\.json: field 'shots' names shared list 'nope'",
        ),
        (
            lambda d: d.update(category="animal"),
            r"parachute\.json: pack 'parachute': category must be one of",
        ),
        (lambda d: d.update(subjects=["a pilot", "a pilot"]), r"parachute\.json: .*duplicate subjects"),
        (lambda d: d.update(implicit=[]), r"parachute\.json: field 'implicit' is empty"),
        (
            lambda d: d.update(implicit=[["a parachute over a field", "a field"]]),
            r"parachute\.json: field 'implicit': prompt 'a parachute over a field' names the concept",
        ),
    ],
)
def test_a_broken_pack_file_is_refused_naming_the_file_and_field(packs, change, message):
    _edit(packs / "parachute.json", change)
    with pytest.raises(ValueError, match=message) as err:
        load_packs(packs)
    assert "\n" not in str(err.value)


def test_a_duplicate_slug_is_refused(packs):
    shutil.copy(packs / "parachute.json", packs / "parachute_copy.json")
    with pytest.raises(
        ValueError, match=r"parachute_copy\.json: field 'slug' 'parachute' is already .*parachute\.json"
    ):
        load_pack_files(packs)


def test_broken_json_and_a_missing_shared_file_are_refused(packs):
    (packs / "tench.json").write_text('{"slug": "tench",', encoding="utf-8")
    with pytest.raises(ValueError, match=r"tench\.json: not valid JSON .*line 1"):
        load_pack_files(packs)
    (packs / "tench.json").unlink()
    _edit(packs / SHARED_FILE, lambda d: d.pop("shots"))
    with pytest.raises(ValueError, match=r"shared\.json: needs the list 'shots'"):
        load_pack_files(packs)
    (packs / SHARED_FILE).unlink()
    with pytest.raises(ValueError, match=r"shared\.json: missing"):
        load_shared(packs)


KITE = {
    "slug": "kite",
    "name": "kite",
    "category": "object",
    "forbidden": ["kite"],
    "forms": ["a kite", "a red kite", "a diamond kite"],
    "subjects": ["a child", "a woman in a coat", "an old man", "a boy"],
    "scenes": ["on a windy hill", "on a beach", "in a park", "above a field"],
    "templates": [["{subject} flying {c} {scene}, {shot}", "{subject} walking {scene}, {shot}"]],
    "implicit": [["a diamond of cloth tugging at its string above a hill", "a scarf flapping above a hill"]],
}


def test_a_pack_in_another_folder_is_built_without_python(tmp_path, capsys):
    """A user writes one JSON file in a folder of their own (no shared.json: the built-in lists are
    used, here the default shots) and builds the concept files from it."""
    mine = tmp_path / "my_packs"
    mine.mkdir()
    (mine / "kite.json").write_text(json.dumps(KITE, indent=2), encoding="utf-8")
    specs, implicit = load_packs(mine)
    assert list(specs) == ["kite"] and specs["kite"].shots == PACKS["parachute"].shots
    assert implicit["kite"] == (tuple(KITE["implicit"][0]),)
    assert len(generate_pairs(specs["kite"], n=40)) == 40

    out = tmp_path / "concepts"
    out.mkdir()
    (out / "index.json").write_text(json.dumps([{"slug": "other", "name": "other"}]), encoding="utf-8")
    assert main(["--packs", str(mine), "--out", str(out), "--n", "40"]) == 0
    assert "1 pack(s)" in capsys.readouterr().out
    assert len((out / "kite.jsonl").read_text(encoding="utf-8").splitlines()) == 40
    assert (out / "kite.implicit.txt").read_text(encoding="utf-8") == KITE["implicit"][0][0] + "\n"
    index = json.loads((out / "index.json").read_text(encoding="utf-8"))
    assert [e["slug"] for e in index] == ["kite", "other"], "the other index entries are kept"


def test_cli_reports_a_bad_pack_folder_as_a_usage_error(tmp_path, capsys):
    (tmp_path / "broken.json").write_text('{"slug": "broken"}', encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main(["--packs", str(tmp_path), "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2
    assert "error: " in capsys.readouterr().err and not (tmp_path / "out").exists()
