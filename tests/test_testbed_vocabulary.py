"""The testbed's caption vocabulary digest (captions.vocabulary_digest, recipe.json, pipeline.check_vocabulary):
the shipped weights load without a warning, a changed vocabulary warns, the files' layout does not count."""

from __future__ import annotations

import dataclasses
import json
import shutil
import warnings

import pytest

from clear_core.pack_files import PACKS_DIR
from clear_core.packs import PACKS, load_packs
from clear_core.testbed import captions
from clear_core.testbed.captions import vocabulary_digest
from clear_core.testbed.pipeline import (
    ASSETS,
    StaleVocabularyWarning,
    check_vocabulary,
    load_testbed_pipeline,
)


def test_shipped_recipe_records_the_installed_vocabulary():
    recipe = json.loads((ASSETS / "recipe.json").read_text(encoding="utf-8"))
    assert recipe["vocabulary_sha256"] == vocabulary_digest()
    with warnings.catch_warnings():
        warnings.simplefilter("error", StaleVocabularyWarning)
        assert check_vocabulary(ASSETS) is None


def test_shipped_weights_load_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", StaleVocabularyWarning)
        pipe = load_testbed_pipeline()
    assert pipe.transformer is not None


def test_a_changed_pack_or_caption_table_changes_the_digest_and_warns(monkeypatch):
    before = vocabulary_digest()
    spec = PACKS["parachute"]
    monkeypatch.setitem(
        PACKS, "parachute", dataclasses.replace(spec, forms=(*spec.forms, "a green parachute"))
    )
    assert vocabulary_digest() != before
    with pytest.warns(StaleVocabularyWarning, match="trained on another caption vocabulary"):
        assert "python -m clear_core.testbed.train" in check_vocabulary(ASSETS)
    monkeypatch.setitem(PACKS, "parachute", spec)
    assert vocabulary_digest() == before
    monkeypatch.setattr(captions, "GENERIC_TEMPLATES", (*captions.GENERIC_TEMPLATES, "{c} at dawn"))
    assert vocabulary_digest() != before


def test_a_pack_the_captions_do_not_use_leaves_the_digest(monkeypatch):
    before = vocabulary_digest()
    assert "gas_pump" in captions.CAPTION_PACKS and "nudity" in captions.CAPTION_PACKS
    spec = PACKS["picasso"]
    monkeypatch.setitem(PACKS, "picasso", dataclasses.replace(spec, forbidden=(*spec.forbidden, "cubist")))
    assert vocabulary_digest() == before, "forbidden words are not caption vocabulary"


def test_the_digest_is_of_content_not_file_layout(tmp_path, monkeypatch):
    """The same packs written with other indentation and key order give the same digest."""
    folder = tmp_path / "packs"
    folder.mkdir()
    for path in PACKS_DIR.glob("*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        (folder / path.name).write_text(json.dumps(data, indent=4, sort_keys=True), encoding="utf-8")
    before = vocabulary_digest()
    specs, _ = load_packs(folder)
    for slug, spec in specs.items():
        monkeypatch.setitem(PACKS, slug, spec)
    assert vocabulary_digest() == before


def test_a_recipe_without_a_digest_is_not_checked_and_a_broken_one_warns(tmp_path):
    assert check_vocabulary(tmp_path) is None  # no recipe.json
    (tmp_path / "recipe.json").write_text(json.dumps({"steps": 10}), encoding="utf-8")
    assert check_vocabulary(tmp_path) is None  # trained before the digest existed
    (tmp_path / "recipe.json").write_text("{", encoding="utf-8")
    with pytest.warns(StaleVocabularyWarning, match="cannot read"):
        check_vocabulary(tmp_path)
    shutil.copy(ASSETS / "recipe.json", tmp_path / "recipe.json")
    assert check_vocabulary(tmp_path) is None


def test_the_caption_tables_file_is_checked(tmp_path):
    from clear_core.testbed.captions import VOCABULARY_FILE, load_tables

    assert load_tables()["generic_templates"] == captions.GENERIC_TEMPLATES
    data = json.loads(VOCABULARY_FILE.read_text(encoding="utf-8"))
    bad = tmp_path / "captions.json"
    bad.write_text(json.dumps({**data, "look_phrases": "4k video"}), encoding="utf-8")
    with pytest.raises(
        ValueError, match=r"captions\.json: table 'look_phrases' must be a non-empty JSON list"
    ):
        load_tables(bad)
    bad.write_text(json.dumps({k: v for k, v in data.items() if k != "scene_forms"}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"table 'scene_forms'"):
        load_tables(bad)
    bad.write_text("[", encoding="utf-8")
    with pytest.raises(ValueError, match=r"captions\.json: cannot read"):
        load_tables(bad)
