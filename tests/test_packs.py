"""The built-in concept packs: the committed files, the generator that makes them, the paraphrases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clear_core.packs import (
    DEFAULT_OUT,
    IMPLICIT,
    MAX_CHARS,
    MIN_CHARS,
    PACKS,
    PackSpec,
    find_forbidden,
    generate_pairs,
    main,
    write_packs,
)

CONCEPTS = DEFAULT_OUT
UNRELATED = DEFAULT_OUT.parent / "prompts" / "unrelated.txt"
EXPECTED = {
    "object": {
        "cassette_player", "chain_saw", "church", "english_springer", "french_horn",
        "garbage_truck", "gas_pump", "golf_ball", "parachute", "tench",
    },
    "style": {"van_gogh", "picasso", "rembrandt", "andy_warhol", "caravaggio"},
    "identity": {"angela_merkel", "barack_obama", "donald_trump", "joe_biden", "queen_elizabeth_ii"},
    "nudity": {"nudity"},
}  # fmt: skip
UNRELATED_AVOID = (
    "dog", "puppy", "fish", "angler", "painting", "painted", "in the style", "portrait", "statue",
    "president", "monarch", "chancellor", "canopy", "skydiv", "steeple", "chapel", "cathedral", "brass",
    "tape", "fuel", "petrol", "lumber", "wearing nothing",
)  # fmt: skip
"""Words that would tie an 'unrelated' prompt to a built-in concept, beyond the concepts' own words."""


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _pairs(slug: str) -> list[dict]:
    return [json.loads(line) for line in _lines(CONCEPTS / f"{slug}.jsonl")]


def test_every_concept_has_a_spec_and_implicit_prompts():
    assert {slug: spec.category for slug, spec in PACKS.items()} == {
        slug: cat for cat, slugs in EXPECTED.items() for slug in slugs
    }
    assert set(IMPLICIT) == set(PACKS)


@pytest.mark.parametrize("slug", sorted(PACKS))
def test_committed_pairs_are_valid(slug):
    rows = _pairs(slug)
    assert len(rows) >= 200
    for row in rows:
        assert isinstance(row, dict) and set(row) == {"positive", "negative"}
        pos, neg = row["positive"], row["negative"]
        assert pos != neg
        for text in (pos, neg):
            assert isinstance(text, str) and text == text.strip() and "\n" not in text
            assert MIN_CHARS <= len(text) <= MAX_CHARS
    assert len({(r["positive"], r["negative"]) for r in rows}) == len(rows), "duplicate pairs"


def test_index_lists_every_pack_with_its_counts():
    index = json.loads((CONCEPTS / "index.json").read_text(encoding="utf-8"))
    assert [e["slug"] for e in index] == list(PACKS)
    for entry in index:
        spec = PACKS[entry["slug"]]
        assert set(entry) == {"slug", "name", "category", "n_pairs", "n_implicit"}
        assert (entry["name"], entry["category"]) == (spec.name, spec.category)
        assert entry["n_pairs"] == len(_pairs(spec.slug))
        assert entry["n_implicit"] == len(_lines(CONCEPTS / f"{spec.slug}.implicit.txt"))


def test_committed_files_equal_a_fresh_generation(tmp_path):
    """Catches hand edits: the assets are exactly what `python -m clear_core.packs` writes."""
    written = write_packs(tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for p in CONCEPTS.iterdir())
    for path in written:
        assert (CONCEPTS / path.name).read_bytes() == path.read_bytes(), (
            f"{path.name} differs; rerun the generator"
        )


def test_generation_is_deterministic_per_seed():
    spec = PACKS["parachute"]
    first = generate_pairs(spec, n=60, seed=0)
    assert first == generate_pairs(spec, n=60, seed=0)
    assert first != generate_pairs(spec, n=60, seed=1)
    assert first[:10] == generate_pairs(spec, n=10, seed=0), "a larger n extends a smaller one"


def test_packs_differ_from_each_other_for_the_same_seed():
    """The seed is mixed with the slug: two packs with the same templates do not draw in lockstep."""
    a = generate_pairs(PACKS["barack_obama"], n=30)
    b = generate_pairs(PACKS["joe_biden"], n=30)
    swap = [(p.replace("Joe Biden", "Barack Obama"), q) for p, q in b]
    assert [p for p, _ in a] != [p for p, _ in swap]


def test_large_n_is_reachable():
    """The paper uses 500-3000 pairs a concept; every vocabulary must allow at least 1000."""
    for spec in PACKS.values():
        assert spec.max_pairs() >= 1000, spec.slug
    assert len(set(generate_pairs(PACKS["nudity"], n=1000))) == 1000


def test_too_small_vocabulary_is_refused():
    spec = PackSpec(
        slug="tiny",
        name="kite",
        category="object",
        forbidden=("kite",),
        templates=(("{subject} with {c}, {shot}", "{subject}, {shot}"),),
        forms=("a kite",),
        subjects=("a child on a hill", "a woman on a beach"),
        shots=("35mm film",),
    )
    assert len(generate_pairs(spec, n=2)) == 2
    with pytest.raises(ValueError, match="at most 2 unique pairs"):
        generate_pairs(spec, n=3)


def test_leaky_negative_is_refused():
    spec = PackSpec(
        slug="leaky",
        name="kite",
        category="object",
        forbidden=("kite",),
        templates=(("{subject} flying {c}, {shot}", "{subject} without a kite, {shot}"),),
        forms=("a kite", "a red kite"),
        subjects=("a child on a hill", "a woman on a beach"),
    )
    with pytest.raises(ValueError, match="contains concept word"):
        generate_pairs(spec, n=3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"slug": "Bad Slug"}, "slug"),
        ({"category": "animal"}, "category"),
        ({"templates": (("{who} with {c}", "{who}"),)}, "uses {who}"),
        ({"templates": (("{subject} with {c} {scene}", "{subject} {scene}"),)}, "scenes is empty"),
        ({"stand_ins": ("a man",)}, "matched by position"),
        ({"forbidden": ("Kite",)}, "lowercase"),
    ],
)
def test_pack_spec_checks_itself(kwargs, message):
    base = dict(
        slug="kite",
        name="kite",
        category="object",
        forbidden=("kite",),
        templates=(("{subject} with {c}, {shot}", "{subject}, {shot}"),),
        forms=("a kite", "a red kite"),
        subjects=("a child on a hill",),
    )
    with pytest.raises(ValueError, match=message):
        PackSpec(**{**base, **kwargs})


@pytest.mark.parametrize("slug", sorted(PACKS))
def test_implicit_prompts_never_name_the_concept(slug):
    implicit = _lines(CONCEPTS / f"{slug}.implicit.txt")
    neutral = _lines(CONCEPTS / f"{slug}.implicit_neutral.txt")
    assert len(implicit) >= 24
    assert len(neutral) == len(implicit)
    assert len(set(implicit)) == len(implicit) and len(set(neutral)) == len(neutral)
    forbidden = PACKS[slug].forbidden
    for text in implicit + neutral:
        assert not find_forbidden(text, forbidden), f"{slug}: {text!r} names the concept"
        assert text == text.strip() and text
    assert all(i != z for i, z in zip(implicit, neutral))


def test_forbidden_words_match_at_word_starts():
    assert find_forbidden("two golfers on a green", ("golf",)) == ["golf"]
    assert find_forbidden("A PARACHUTIST lands", ("parachute", "parachutist")) == ["parachutist"]
    assert find_forbidden("a thorn bush and a pumpkin", ("horn",)) == []
    assert find_forbidden("a chainsaw", ("chain", "saw")) == ["chain"]


@pytest.mark.parametrize("slug", sorted(EXPECTED["object"] | EXPECTED["identity"]))
def test_positive_names_the_concept_and_negative_does_not(slug):
    phrase = PACKS[slug].name.lower()
    for row in _pairs(slug):
        assert phrase in row["positive"].lower()
        assert phrase not in row["negative"].lower()


@pytest.mark.parametrize("slug", sorted(PACKS))
def test_negatives_carry_no_concept_word(slug):
    spec = PACKS[slug]
    for row in _pairs(slug):
        assert not find_forbidden(row["negative"], spec.forbidden), row["negative"]
        assert any(m.lower() in row["positive"].lower() for m in spec.concept_markers), row["positive"]


def test_unrelated_prompts_avoid_every_concept():
    prompts = _lines(UNRELATED)
    assert len(prompts) >= 100
    assert len(set(prompts)) == len(prompts)
    words = sorted({w for spec in PACKS.values() for w in spec.forbidden} | set(UNRELATED_AVOID))
    for prompt in prompts:
        assert prompt == prompt.strip() and MIN_CHARS <= len(prompt) <= MAX_CHARS
        assert not find_forbidden(prompt, words), prompt


def test_cli_regenerates_only_the_named_packs(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--n", "30", "--only", "tench", "nudity"]) == 0
    assert "2 pack(s)" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{s}{x}" for s in ("tench", "nudity") for x in (".jsonl", ".implicit.txt", ".implicit_neutral.txt")]
        + ["index.json"]
    )
    assert len(_lines(tmp_path / "tench.jsonl")) == 30
    # a later partial run keeps the other packs' index entries
    main(["--out", str(tmp_path), "--n", "25", "--only", "church"])
    index = json.loads((tmp_path / "index.json").read_text(encoding="utf-8"))
    assert [(e["slug"], e["n_pairs"]) for e in index] == [("church", 25), ("tench", 30), ("nudity", 30)]
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--only", "unicorn"])
