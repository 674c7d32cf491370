import pytest

from clear_core.concepts import (
    MAX_PROMPT_CHARS,
    ConceptSet,
    builtin_packs,
    load_builtin,
    load_implicit,
    load_prompts,
    unrelated_prompts,
)

GOOD = '{"positive": "a dog with a parachute", "negative": "a dog", "source": "hand"}\n{"positive": "a church at dusk", "negative": "a house at dusk"}\n'


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_round_trip_is_lossless(tmp_path, suffix):
    concept = ConceptSet.from_text(GOOD, name="mixed")
    path = concept.save(tmp_path / f"c{suffix}")
    again = ConceptSet.load(path, name="mixed")
    assert again.pairs[0].positive == "a dog with a parachute"
    assert dict(again.pairs[0].extra)["source"] == "hand"
    assert again.positives == concept.positives and again.negatives == concept.negatives
    assert ConceptSet.load(again.save(tmp_path / f"d{suffix}")).to_text() == again.to_text()


def _write(tmp_path, name, content, binary=False):
    path = tmp_path / name
    path.write_bytes(content) if binary else path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("empty.jsonl", "", r"empty.jsonl: the file is empty"),
        ("blank.jsonl", "\n  \n", r"the file is empty"),
        ("col.csv", "positive,neg\na,b\n", r"col.csv, line 1: missing column 'negative'"),
        ("key.jsonl", '{"positive": "a cat"}\n', r"key.jsonl, line 1: missing key 'negative'"),
        ("bad.jsonl", '{"positive": "a", "negative": "b"}\n{oops\n', r"bad.jsonl, line 2: not valid JSON"),
        ("arr.jsonl", '["a", "b"]\n', r"line 1: expected an object"),
        ("emp.jsonl", '{"positive": " ", "negative": "b"}\n', r"line 1: the positive prompt is empty"),
        (
            "same.jsonl",
            '{"positive": "A cat", "negative": "a  cat"}\n',
            r"line 1: the positive and negative prompts are identical",
        ),
        (
            "dup.csv",
            "positive,negative\na dog,b\nc,d\nA dog,b\n",
            r"dup.csv, line 4: duplicate of the pair on line 2",
        ),
        (
            "long.jsonl",
            '{"positive": "' + "x" * (MAX_PROMPT_CHARS + 1) + '", "negative": "b"}\n',
            r"line 1: the positive prompt is 2,001 characters long",
        ),
        ("num.jsonl", '{"positive": 3, "negative": "b"}\n', r"line 1: the positive prompt must be text"),
        ("ragged.csv", "positive,negative\na,b,c\n", r"ragged.csv, line 2: expected 2 columns"),
        ("x.txt", "a,b\n", r"unsupported concept file type '.txt'"),
    ],
)
def test_bad_files_name_file_line_and_problem(tmp_path, name, content, match):
    with pytest.raises(ValueError, match=match):
        ConceptSet.load(_write(tmp_path, name, content))


def test_non_utf8_names_the_line(tmp_path):
    path = _write(
        tmp_path,
        "latin.jsonl",
        b'{"positive": "a", "negative": "b"}\n{"positive": "caf\xe9", "negative": "x"}\n',
        binary=True,
    )
    with pytest.raises(ValueError, match=r"latin.jsonl, line 2: not valid UTF-8 \(byte 0xe9\)"):
        ConceptSet.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="concept file not found"):
        ConceptSet.load(tmp_path / "nope.jsonl")


def test_builtin_packs_load_through_the_validator():
    slugs = builtin_packs()
    assert len(slugs) == 21 and "parachute" in slugs and "van_gogh" in slugs
    for slug in slugs:
        concept = load_builtin(slug)
        implicit, neutral = load_implicit(slug)
        assert len(concept) >= 200 and len(implicit) == len(neutral) >= 24
    assert len(unrelated_prompts()) >= 100
    with pytest.raises(ValueError, match="no built-in concept 'unicorn'"):
        load_builtin("unicorn")
    with pytest.raises(ValueError, match="invalid concept slug"):
        load_builtin("../etc")


def test_prompt_files(tmp_path):
    assert load_prompts(_write(tmp_path, "p.txt", "a\n\n b \n")) == ["a", "b"]
    with pytest.raises(ValueError, match="the file is empty"):
        load_prompts(_write(tmp_path, "e.txt", "\n"))


def test_invisible_prompts_are_refused(tmp_path):
    with pytest.raises(
        ValueError, match=r"line 2: the positive prompt is empty \(only invisible characters\)"
    ):
        ConceptSet.from_text(
            '{"positive": "a", "negative": "b"}\n{"positive": "\\u200b\\u200b", "negative": "b"}'
        )
    with pytest.raises(ValueError, match=r"z.txt, line 2: the prompt is empty \(only invisible characters\)"):
        load_prompts(_write(tmp_path, "z.txt", "a cat\n\u200b\ufeff\u200b\n"))


def test_unknown_slug_lists_the_packs_with_a_suggestion(tmp_path):
    from clear_core.concepts import ConceptPair, load_concept

    assert len(load_concept("parachute")) >= 200
    with pytest.raises(
        ValueError,
        match="'parachte' is neither a concept file nor a built-in concept; did you "
        "mean 'parachute'\\? built-in: andy_warhol, ",
    ):
        load_concept("parachte")
    with pytest.raises(ValueError, match="missing.jsonl: concept file not found"):
        load_concept(tmp_path / "missing.jsonl")
    local = ConceptSet("local", [ConceptPair("a red hat", "a hat")]).save(tmp_path / "parachute.jsonl")
    assert load_concept(local).positives == ["a red hat"]  # an existing file is read as a file
