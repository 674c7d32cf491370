"""The app on a shared server: no cross-talk through the clip cache, no server path accepted or shown,
uploads bounded before they are read, visitor text escaped, temporary folders never left behind."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import threading
import zipfile

import gradio as gr
import numpy as np
import pytest
import torch
from test_generation import make_eraser

from app import concept_tab, export_tab, generation, preview_tab, public, tempdirs
from app.common import escape_md, session_status, user_errors
from app.launch import launch_options
from app.measure import on_measure
from app.state import Session
from clear_core.concepts import ConceptSet, load_builtin


def quiet(*_args, **_kwargs):
    return None


# --------------------------------------------------------------------------------- no cross-talk
def test_four_concurrent_sessions_that_differ_only_in_the_gate_get_their_own_clips(tmp_path):
    """Erasers of one search, gated differently (and one ungated): each visitor sees its own edit."""
    # imported here: importing the submodule early would shadow clear_core.generation's lazy `render`
    from clear_core.generation.preview import PreviewCache

    pipe = generation.get_pipeline("tiny-cogvideox")
    base = make_eraser(pipe)
    erasers = [base] + [
        dataclasses.replace(base, gate_floor=torch.zeros(64), gate_tau=tau, meta=dict(base.meta))
        for tau in (10.0, 50.0, 400.0)
    ]
    concept = ConceptSet("parachute", load_builtin("parachute").pairs[:8])
    prompt, gamma, start = "a parachute over the sea", 3.0, threading.Barrier(len(erasers))
    shown: dict[int, tuple] = {}

    def visitor(i: int) -> None:
        start.wait()
        shown[i] = preview_tab.generate_media(
            prompt, gamma, 0, "tiny-cogvideox", 2, Session(concept=concept, eraser=erasers[i]), quiet
        )

    threads = [threading.Thread(target=visitor, args=(i,)) for i in range(len(erasers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert sorted(shown) == [0, 1, 2, 3]
    assert len({shown[i][1] for i in shown}) == 4  # four erased clips, not one shared
    assert len({shown[i][0] for i in shown}) == 1  # one original, shared (it has no eraser)
    settings, cache, alone = (
        generation.render_settings("tiny-cogvideox", 2),
        generation.preview_cache(),
        PreviewCache(tmp_path),
    )
    truth = [alone.clip(pipe, "tiny-cogvideox", prompt, 0, settings, [(e, gamma)]).frames for e in erasers]
    for i, e in enumerate(erasers):
        clip = cache.get(cache.key("tiny-cogvideox", prompt, 0, settings, [(e, gamma)]))
        assert str(clip.video) == shown[i][1]
        np.testing.assert_array_equal(clip.frames, truth[i])  # the clip of its own eraser, rendered alone
    differs = [not np.array_equal(truth[i], truth[j]) for i in range(4) for j in range(i + 1, 4)]
    assert all(differs)  # the gate changes the frames, so a shared clip would have been caught


# ----------------------------------------------------------------------------------- public mode
@pytest.fixture
def public_mode():
    before = public.policy()
    yield lambda **changes: public.configure(public.Policy(public=True, **changes))
    public.configure(before)


def _error(fn, *args) -> str:
    with pytest.raises(gr.Error) as err:
        fn(*args)
    return err.value.message


def test_a_visitor_names_no_server_path_and_learns_nothing_from_the_answer(public_mode, tmp_path):
    public_mode()
    exists, missing = str(tmp_path), str(tmp_path / "missing")
    for fn, args, kind, allowed in (
        (concept_tab.load_model, (Session(),), "model", "minilm"),
        (generation.get_pipeline, (), "pipeline", "testbed, tiny-wan, tiny-cogvideox, tiny-sd"),
        (lambda spec: on_measure("a.mp4", "b.mp4", spec), (), "detector", "testbed, nudenet"),
    ):
        said = set()
        for name in (exists, missing, "/etc", "minilm/../../etc"):
            value = name if kind != "detector" else f"faces:{name}"
            with pytest.raises((gr.Error, ValueError)) as err, user_errors():
                fn(value, *args)
            said.add(getattr(err.value, "message", str(err.value)))
        # the same words for a folder, a missing path and /etc: nothing tells them apart
        assert said == {f"this server offers only these {kind}s: {allowed}"}, said


@pytest.mark.parametrize(
    ("policy", "setup", "expected"),
    [
        ({"max_pairs": 5}, "pairs:6", "para.jsonl: 6 pairs; this server takes at most 5 per concept"),
        ({"max_upload_bytes": 1024}, "pairs:40", "para.jsonl: the concept file is"),
        ({}, "nul", "line 1: the positive prompt contains the control character U+0000"),
    ],
    ids=["too many pairs", "file too large", "NUL byte"],
)
def test_concept_uploads_are_bounded_before_capture(policy, setup, expected, public_mode, tmp_path):
    public_mode(**policy)
    path = tmp_path / "gradio" / "abc123" / "para.jsonl"
    path.parent.mkdir(parents=True)
    if setup.startswith("pairs:"):
        rows = [
            {"positive": f"a cat number {i} with a hat", "negative": f"a cat number {i}"}
            for i in range(int(setup[6:]))
        ]
    else:
        rows = [{"positive": "a cat\u0000 with a hat", "negative": "a cat"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    message = _error(concept_tab.load_upload, str(path), "", "", "", Session())
    assert expected in message and str(tmp_path) not in message


def _zip(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return str(path)


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        (
            [("eraser.json", "{}"), ("eraser.safetensors", b"\0" * 2 * 1024**2)],
            "bomb.zip: the archive unpacks to 2.0 MiB; the limit is 1.0 MiB",
        ),
        (
            [("eraser.json", "{}"), ("x/eraser.json", "{}")],
            "bomb.zip: eraser.json appears more than once in the archive",
        ),
        (
            [("eraser.json", "{not json"), ("eraser.safetensors", b"12345678")],
            "uploaded bomb.zip: eraser.json: not valid JSON",
        ),
    ],
    ids=["zip bomb", "duplicate member", "corrupt artifact"],
)
def test_artifact_uploads_are_checked_before_unpacking_and_leave_nothing(
    members, expected, public_mode, tmp_path
):
    public_mode(max_upload_bytes=1024**2)
    upload = _zip(tmp_path / "bomb.zip", members)
    session, root = Session().folder()
    try:
        message = _error(export_tab.load_eraser, [upload], session)
        assert expected in message, message
        assert "/tmp" not in message and str(root) not in message
        assert list(root.iterdir()) == []  # the upload folder went with the failure
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_errors_lose_server_paths_and_bugs_show_no_details(public_mode):
    public_mode()
    with pytest.raises(gr.Error) as err, user_errors():
        raise ValueError("/tmp/gradio/0a1b2c/para.jsonl, line 3: bad pair (see /srv/app/assets/x.txt)")
    assert err.value.message == "para.jsonl, line 3: bad pair (see x.txt)"
    with pytest.raises(gr.Error) as err, user_errors():
        raise RuntimeError("/srv/secret/model.bin: boom")
    assert err.value.message == "unexpected RuntimeError; the details are in the server's log"
    public.configure(public.Policy(public=False))
    with pytest.raises(gr.Error) as err, user_errors():  # a local user sees everything
        raise RuntimeError("/srv/secret/model.bin: boom")
    assert "/srv/secret/model.bin" in err.value.message


def test_visitor_text_is_escaped_in_markdown():
    name = "[click](http://evil.example) <img src=x onerror=alert(1)> *bold*"
    concept = ConceptSet(name, load_builtin("parachute").pairs[:2])
    status = session_status(Session(concept=concept))
    assert "<img" not in status and "](" not in status and "\\*bold\\*" in status
    assert "&lt;img" in status and escape_md("a_b") == "a\\_b"
    assert "<img" not in concept_tab.concept_summary(Session(concept=concept, source="pasted text"))


def test_public_mode_comes_with_0000_and_the_operator_sets_the_lists():
    space = public.from_environment({"SPACE_ID": "me/app"})
    assert space.public and space.models == ("minilm",) and space.max_pairs == public.PUBLIC_MAX_PAIRS
    assert not public.from_environment({"SPACE_ID": "me/app", "CLEAR_PUBLIC": "0"}).public
    assert not public.from_environment({}).public
    custom = public.from_environment(
        {"CLEAR_PUBLIC": "1", "CLEAR_MODELS": "minilm, t5-small", "CLEAR_DETECTORS": "testbed"}
    )
    assert custom.public and custom.models == ("minilm", "t5-small") and custom.detectors == ("testbed",)
    assert launch_options({"SPACE_ID": "me/app"})["max_file_size"] == public.PUBLIC_MAX_UPLOAD_BYTES
    with pytest.raises(ValueError, match="CLEAR_PUBLIC must be 1 or 0"):
        public.from_environment({"CLEAR_PUBLIC": "maybe"})


def test_pipeline_choices_follow_the_operator_list(public_mode):
    public_mode(pipelines=("tiny-wan",))
    assert generation.pipeline_choices() == ["tiny-wan"]


# ------------------------------------------------------------------------------- temporary folders
def test_start_up_removes_the_temp_folders_of_dead_app_processes(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f"{tempdirs.PREFIX}{dead.pid}-abc"
    (stale / "gradio").mkdir(parents=True)
    (stale / "gradio" / "upload.zip").write_bytes(b"x")
    live = tmp_path / f"{tempdirs.PREFIX}{os.getpid()}-def"
    live.mkdir()
    old = tmp_path / "clear-workbench-xyz"
    old.mkdir()
    os.utime(old, (0, 0))
    young = tmp_path / "clear-preview-new"
    young.mkdir()
    assert sorted(tempdirs.remove_stale(tmp_path)) == sorted([stale, old])
    assert live.exists() and young.exists()


def test_the_app_process_puts_every_temporary_file_in_its_own_folder(tmp_path):
    script = (
        "import os, tempfile\n"
        "from app.tempdirs import use_private_temp\n"
        f"root = use_private_temp({str(tmp_path)!r})\n"
        "print(root, os.environ['GRADIO_TEMP_DIR'], tempfile.mkdtemp(), sep='\\n')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True, cwd=os.getcwd()
    )
    root, gradio_dir, made = out.stdout.split()
    assert gradio_dir.startswith(root) and made.startswith(root)
    assert list(tmp_path.iterdir()) == []  # removed when the process exited


def test_concurrent_encodes_through_one_tokenizer_keep_their_own_padding():
    """diffusers' encode_prompt tokenizes twice with different padding; two threads must not mix them."""
    from clear_core.generation.conditioning import encode
    from clear_core.generation.tiny import tiny_pipeline

    pipe = tiny_pipeline("tiny-cogvideox")
    prompts = ["a cat", "a parachute over the sea at dawn", "a dog", "a red car on a coastal road"] * 2
    shapes, start = [], threading.Barrier(len(prompts))

    def work(prompt: str) -> None:
        start.wait()
        for _ in range(4):
            cond = encode(pipe, [prompt], [""], (), True, 16)
            shapes.append(
                (
                    tuple(cond.positive["prompt_embeds"].shape),
                    tuple(cond.negative["negative_prompt_embeds"].shape),
                )
            )

    threads = [threading.Thread(target=work, args=(p,)) for p in prompts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(shapes) == 4 * len(prompts) and set(shapes) == {((1, 16, 32), (1, 16, 32))}
