"""video_eval: real detectors (NudeNet, dlib) on real inputs, motion, bootstrap, the report CLI, bad input."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from clear_core.video_eval import stats  # noqa: E402
from clear_core.video_eval.cli import main as cli_main  # noqa: E402
from clear_core.video_eval.detectors import FrameDetections, make_detector, parse_spec  # noqa: E402
from clear_core.video_eval.motion import video_motion  # noqa: E402


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    """A real photograph with one face (Eileen Collins), shipped inside scikit-image: no download."""
    skimage_data = pytest.importorskip("skimage.data")
    return np.ascontiguousarray(skimage_data.astronaut())


@pytest.fixture(scope="module")
def nudenet():
    return make_detector("nudenet")


def texture(h: int = 64, w: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth random colour texture (something BRISQUE and optical flow can hold on to)."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (h, w, 3)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 2.0) * 3 - 255, 0, 255).astype(np.uint8)


def moving_clip(n: int = 10, step: int = 2, seed: int = 0) -> np.ndarray:
    base = texture(96, 96, seed)
    return np.stack([np.roll(base, step * i, axis=1)[16:80, 16:80] for i in range(n)])


# --- detectors ----------------------------------------------------------------------------------


def test_nudenet_blank_frame_finds_nothing_and_manifest_pins_it(nudenet):
    blank = np.zeros((2, 96, 128, 3), np.uint8)
    det = nudenet.detect(blank)
    assert isinstance(det, FrameDetections)
    assert det.scores.shape == (2,) and det.decisions.shape == (2,)
    assert det.decisions.dtype == bool and not det.decisions.any() and det.rate == 0.0
    assert det.boxes == [[], []]
    m = nudenet.manifest()
    assert m["threshold"] == 0.6 and "FEMALE_BREAST_EXPOSED" in m["classes"]
    assert "FACE_FEMALE" not in m["classes"]
    assert len(m["weights_sha256"]["320n.onnx"]) == 64 and m["version"] != "not installed"


def test_nudenet_threshold_and_class_list_change_the_decision(astronaut, nudenet):
    frames = astronaut[None]
    faces_low = make_detector("nudenet:threshold=0,classes=FACE_FEMALE+FACE_MALE").detect(frames)
    faces_high = make_detector("nudenet:threshold=1,classes=FACE_FEMALE+FACE_MALE").detect(frames)
    default = nudenet.detect(frames)
    # NudeNet finds the astronaut's face: counted only when faces are in the class list and the
    # threshold is below its score; never by the default exposed-body-part list.
    assert faces_low.decisions.tolist() == [True]
    assert 0.2 <= faces_low.scores[0] < 1.0
    face_boxes = [b for b in faces_low.boxes[0] if b.label.startswith("FACE")]
    assert face_boxes and face_boxes[0].counted
    x0, y0, x1, y1 = face_boxes[0].x0, face_boxes[0].y0, face_boxes[0].x1, face_boxes[0].y1
    assert 0 <= x0 < x1 <= 512 and 0 <= y0 < y1 <= 512
    assert faces_high.decisions.tolist() == [False] and faces_high.scores[0] == faces_low.scores[0]
    assert default.decisions.tolist() == [False] and default.scores[0] == 0.0
    assert not any(b.counted for b in default.boxes[0])


def test_detector_specs_are_validated():
    assert parse_spec("faces:/refs,tolerance=0.5") == ("faces", "/refs", {"tolerance": "0.5"})
    with pytest.raises(ValueError, match="unknown kind 'yolo'"):
        make_detector("yolo")
    with pytest.raises(ValueError, match="unknown classes \\['NOSE'\\]"):
        make_detector("nudenet:classes=NOSE")
    with pytest.raises(ValueError, match="threshold must be a number"):
        make_detector("nudenet:threshold=high")
    with pytest.raises(ValueError, match="frames must be a non-empty \\(T, H, W, 3\\) uint8"):
        make_detector("nudenet").detect(np.zeros((4, 4, 3), np.uint8))


def test_faces_no_face_in_face_free_frame_and_match_on_reference(tmp_path, astronaut):
    from PIL import Image

    refs = tmp_path / "refs" / "eileen"
    refs.mkdir(parents=True)
    Image.fromarray(astronaut).save(refs / "portrait.png")
    det = make_detector(f"faces:{tmp_path / 'refs'}")
    shifted = np.roll(astronaut, 7, axis=0)[:400]  # same person, not the same pixels
    frames = np.stack([texture(400, 512), shifted])
    out = det.detect(frames)
    assert out.boxes[0] == [] and out.scores[0] == 0.0 and not out.decisions[0]
    assert out.decisions[1] and out.scores[1] > 1 - det.tolerance
    assert [b.label for b in out.boxes[1]] == ["eileen"]
    m = det.manifest()
    assert m["classes"] == ["eileen"] and m["tolerance"] == 0.6
    assert set(m["weights_sha256"]) == {
        "shape_predictor_5_face_landmarks.dat",
        "dlib_face_recognition_resnet_model_v1.dat",
    }


def test_faces_reference_without_face_is_rejected(tmp_path):
    from PIL import Image

    (tmp_path / "who").mkdir()
    Image.fromarray(texture(128, 128)).save(tmp_path / "who" / "wall.png")
    with pytest.raises(ValueError, match=r"wall\.png: no face found"):
        make_detector(f"faces:{tmp_path}")
    with pytest.raises(ValueError, match="face reference folder not found"):
        make_detector(f"faces:{tmp_path / 'missing'}")


def test_clip_missing_or_wrong_folder_is_one_line_error(tmp_path):
    with pytest.raises(ValueError, match=r"nowhere: CLIP weights folder not found"):
        make_detector(f"clip:{tmp_path / 'nowhere'},concept=cat")
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ValueError, match=r"config.json: model_type is 'bert', expected 'clip'"):
        make_detector(f"clip:{tmp_path / 'bert'},concept=cat")


def tiny_clip(folder):
    """A randomly initialised CLIPModel + processor saved like a real one (character-level BPE vocab)."""
    import transformers as tf

    chars = "abcdefghijklmnopqrstuvwxyz"
    vocab = {
        t: i for i, t in enumerate(["<|startoftext|>", "<|endoftext|>", *chars, *(c + "</w>" for c in chars)])
    }
    folder.mkdir()
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tok = tf.CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    image_proc = tf.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    text = {"vocab_size": len(vocab), "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1}
    text.update(
        num_attention_heads=2, max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1
    )
    vision = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}
    vision.update(image_size=32, patch_size=8)
    torch.manual_seed(0)
    tf.CLIPModel(tf.CLIPConfig(text_config=text, vision_config=vision, projection_dim=8)).save_pretrained(
        folder
    )
    tf.CLIPProcessor(image_processor=image_proc, tokenizer=tok).save_pretrained(folder)
    return folder


def test_clip_detector_on_a_tiny_local_model(tmp_path):
    from clear_core.video_eval.consistency import text_video_similarity

    path = tiny_clip(tmp_path / "clip")
    det = make_detector(f"clip:{path},concept=cat,threshold=0.5")
    out = det.detect(moving_clip(3))
    assert out.scores.shape == (3,) and np.all((out.scores > 0) & (out.scores < 1))
    assert np.array_equal(out.decisions, out.scores >= 0.5)
    m = det.manifest()
    assert m["classes"] == ["a video of a cat"] and "model.safetensors" in m["weights_sha256"]
    sim = text_video_similarity(moving_clip(2), "a cat", str(path))
    assert -1.0 <= sim <= 1.0


def test_testbed_detector_missing_module_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "clear_core.testbed.detector", None)  # import fails
    with pytest.raises(ValueError, match="testbed: the testbed detector is not available"):
        make_detector("testbed:parachute")


def test_testbed_detector_adapter_on_the_real_testbed_module(monkeypatch):
    """The real clear_core.testbed.detector API with an untrained net (its weights may not exist yet)."""
    tb = pytest.importorskip("clear_core.testbed.detector")
    torch.manual_seed(0)
    net = tb.DetectorNet(width=4).eval()
    monkeypatch.setattr(
        tb, "load_detector", lambda path=None: tb.Detector(net, {"accuracy": None}, "ab" * 32)
    )
    det = make_detector("testbed:parachute")
    frames = np.random.default_rng(0).integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)
    out = det.detect(frames)
    preds = tb.Detector(net, {}, "").predict(frames)
    head, cls = tb.concept_attribute("parachute")
    assert np.array_equal(out.decisions, tb.concept_present(preds, "parachute"))
    np.testing.assert_allclose(
        out.scores, preds[f"{head}_probs"][:, list(tb.HEADS[head]).index(cls)], rtol=1e-6
    )
    m = det.manifest()
    assert m["weights_sha256"] == {"detector.safetensors": "ab" * 32} and m["classes"] == ["parachute"]
    with pytest.raises(ValueError, match="no testbed attribute"):
        make_detector("testbed:not-a-pack")


def aesthetic_mlp(path, dims=(8, 16, 8, 4, 2, 1), seed=0):
    """LAION's MLP layout (layers.0/2/4/6/7) with random weights, as safetensors."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    state = {}
    for key, (a, b) in zip(("layers.0", "layers.2", "layers.4", "layers.6", "layers.7"), zip(dims, dims[1:])):
        state[f"{key}.weight"] = rng.normal(size=(b, a)).astype(np.float32)
        state[f"{key}.bias"] = rng.normal(size=(b,)).astype(np.float32)
    save_file(state, str(path))
    return path, state


def test_aesthetic_mlp_matches_hand_computation_and_rejects_bad_files(tmp_path):
    from clear_core.video_eval.aesthetic import AestheticMLP, video_aesthetic
    from clear_core.video_eval.detectors.clip import load_clip

    clip_dir = str(tiny_clip(tmp_path / "clip"))
    path, state = aesthetic_mlp(tmp_path / "mlp.safetensors")
    frames = moving_clip(3)
    img, _ = load_clip(clip_dir).embed(frames, [""])
    x = img
    for key in ("layers.0", "layers.2", "layers.4", "layers.6", "layers.7"):
        x = x @ state[f"{key}.weight"].T.astype(np.float64) + state[f"{key}.bias"]
    assert video_aesthetic(frames, str(path), clip_dir) == pytest.approx(float(x[:, 0].mean()), rel=1e-5)
    wide, _ = aesthetic_mlp(tmp_path / "wide.safetensors", dims=(768, 16, 8, 4, 2, 1))
    with pytest.raises(ValueError, match="reads 768-d embeddings, the CLIP model gives 8-d"):
        video_aesthetic(frames, str(wide), clip_dir)
    (tmp_path / "mlp.pth").write_bytes(b"pickle")
    with pytest.raises(ValueError, match=r"mlp\.pth: expected a \.safetensors file"):
        AestheticMLP(tmp_path / "mlp.pth")


# --- motion, quality, statistics ---------------------------------------------------------------


def test_smoothness_ranks_smooth_clip_above_shuffled():
    clip = moving_clip(12)
    shuffled = clip[np.random.default_rng(1).permutation(len(clip))]
    smooth, jumpy = video_motion(clip), video_motion(shuffled)
    assert smooth.smoothness > jumpy.smoothness + 0.02
    assert smooth.flicker < jumpy.flicker
    static = video_motion(np.repeat(clip[:1], 5, axis=0))
    assert static.smoothness == pytest.approx(1.0) and static.flow_magnitude < 0.05


def test_quality_prefers_sharp_to_blurred(astronaut):
    import cv2

    from clear_core.video_eval.quality import video_quality

    sharp = video_quality(astronaut[None])
    blurred = video_quality(cv2.GaussianBlur(astronaut, (0, 0), 3)[None])
    assert sharp.brisque < blurred.brisque  # lower BRISQUE is better
    assert sharp.sharpness > 5 * blurred.sharpness
    assert np.isnan(video_quality(np.full((1, 64, 64, 3), 128, np.uint8)).brisque)


def test_bootstrap_interval_covers_the_true_rate():
    true_rate, n_prompts, frames = 0.3, 40, 16
    rng = np.random.default_rng(0)

    def one_run(seed):
        per_prompt = (rng.random((n_prompts, frames)) < true_rate).mean(axis=1)
        return stats.bootstrap_mean(per_prompt, n_boot=2000, seed=seed)

    first = one_run(0)
    assert first.low <= true_rate <= first.high and first.n == n_prompts
    covered = np.mean([(iv.low <= true_rate <= iv.high) for iv in (one_run(s) for s in range(200))])
    assert 0.89 <= covered <= 0.99
    # seeded: the same values give the same interval
    values = [0.1, 0.5, 0.2, 0.9]
    assert stats.bootstrap_mean(values, seed=3) == stats.bootstrap_mean(values, seed=3)


def test_paired_difference_pairs_by_prompt_and_seed():
    control = {(p, s): 0.5 for p in range(5) for s in range(2)}
    treated = {(p, s): 0.5 - 0.1 * p for p in range(5) for s in range(2)}
    treated[(99, 0)] = 1.0  # no partner: ignored
    iv = stats.paired_difference(treated, control)
    assert iv.n == 5 and iv.mean == pytest.approx(-0.2)
    assert iv.low <= -0.2 <= iv.high


# --- the report CLI ----------------------------------------------------------------------------


def write_mp4(path, frames, fps=8):
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    with imageio.get_writer(str(path), format="FFMPEG", fps=fps, macro_block_size=1) as w:
        for f in frames:
            w.append_data(f)


def generation_folder(root, n_prompts=3):
    """What 'generate' writes: an mp4 + JSON per (variant, prompt, seed) and manifest.json."""
    videos = []
    for variant, gamma in (("original", None), ("erased", 1.0)):
        for p in range(n_prompts):
            rel = f"{variant}/p{p}_s0.mp4"
            clip = moving_clip(6, step=1 + p, seed=p)
            if variant == "erased":
                clip = clip[np.random.default_rng(p).permutation(len(clip))]
            write_mp4(root / rel, clip)
            meta = rel.replace(".mp4", ".json")
            (root / meta).write_text(json.dumps({"prompt": f"a cat number {p}", "seed": 0}))
            entry = {"variant": variant, "prompt_index": p, "prompt": f"a cat number {p}", "seed": 0}
            videos.append({**entry, "gamma": gamma, "path": rel, "meta": meta})
    manifest = {"pipeline": {"name": "synthetic", "concept": "cat"}, "seeds": [0], "videos": videos}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_cli_report_on_a_generated_folder(tmp_path, capsys):
    folder = generation_folder(tmp_path / "gen")
    clip_dir = tiny_clip(tmp_path / "clip")
    mlp, _ = aesthetic_mlp(tmp_path / "mlp.safetensors")
    argv = [str(folder), "--detector", "nudenet", "--detector", f"clip:{clip_dir}", "--quality-frames", "1"]
    rc = cli_main([*argv, "--aesthetic", str(mlp)])
    assert rc == 0, capsys.readouterr().err
    table = capsys.readouterr().out
    assert "original" in table and "erased" in table and "rate nudenet" in table
    report = json.loads((folder / "video_eval.json").read_text())
    assert report["schema"] == "clear.video_eval/1"
    pinned = report["manifest"]
    assert pinned["detectors"]["nudenet"]["threshold"] == 0.6
    assert pinned["libraries"]["nudenet"] == "3.4.2" and pinned["libraries"]["torch"]
    assert pinned["bootstrap"]["unit"] == "prompt" and pinned["input"]["manifest_sha256"]
    assert pinned["quality"]["brisque_model_sha256"]["svm.txt"]
    assert pinned["consistency"]["weights_sha256"]["model.safetensors"]
    original, erased = report["variants"]["original"], report["variants"]["erased"]
    assert original["n_prompts"] == 3 and original["n_videos"] == 3
    assert original["rate"]["nudenet"] == {"mean": 0.0, "low": 0.0, "high": 0.0, "n": 3}
    assert set(original["rate"]) == {"nudenet", f"clip:{clip_dir}"}
    assert set(original["motion"]) >= {"smoothness", "flicker", "warp_error"}
    assert set(original["quality"]) == {"brisque", "sharpness", "contrast", "colorfulness"}
    assert original["consistency"]["n"] == 3 and original["aesthetic"]["n"] == 3
    assert pinned["aesthetic"]["weights_sha256"]["mlp.safetensors"] and "aesthetic" in table
    assert erased["motion"]["smoothness"]["mean"] < original["motion"]["smoothness"]["mean"]  # shuffled
    paired = report["paired"]["erased"]
    assert paired["vs"] == "original" and paired["n_pairs"] == 3
    assert paired["rate"]["nudenet"]["mean"] == 0.0
    d = paired["motion"]["smoothness"]
    assert d["mean"] == pytest.approx(
        erased["motion"]["smoothness"]["mean"] - original["motion"]["smoothness"]["mean"]
    )
    assert len(report["videos"]) == 6 and len(report["videos"][0]["frame_decisions"]["nudenet"]) == 6
    # a second run refuses to overwrite; --overwrite replaces
    assert cli_main([str(folder), "--quality-frames", "0", "--no-motion"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli_main([str(folder), "--quality-frames", "0", "--overwrite", "--quiet"]) == 0
    assert json.loads((folder / "video_eval.json").read_text())["manifest"]["detectors"] == {}
    assert sorted(p.name for p in folder.iterdir()) == [
        "erased",
        "manifest.json",
        "original",
        "video_eval.json",
    ]


def test_report_is_reproducible(tmp_path):
    from clear_core.video_eval.report import EvalConfig, evaluate_folder

    folder = generation_folder(tmp_path / "gen", n_prompts=2)
    config = dict(detectors=["nudenet:threshold=0.5"], frames_per_video=3, quality_frames=1)
    first = evaluate_folder(folder, EvalConfig(**config))
    second = evaluate_folder(folder, EvalConfig(**config))
    assert first == second  # same numbers, same pinned manifest, nothing random left unseeded
    assert first["manifest"]["detectors"]["nudenet:threshold=0.5"]["threshold"] == 0.5
    assert first["config"]["frames_per_video"] == 3 and first["videos"][0]["frames_used"] == [0, 2, 5]


def _one_line_error(capsys, argv, match):
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and match in err and "\n" not in err
    return err


def test_cli_bad_input_names_the_file_and_writes_nothing(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    _one_line_error(capsys, [str(empty)], f"{empty}: empty folder")
    assert list(empty.iterdir()) == []

    folder = generation_folder(tmp_path / "gen", n_prompts=2)
    before = sorted(p.name for p in folder.rglob("*"))
    _one_line_error(
        capsys, [str(folder), "--detector", f"clip:{tmp_path / 'no-clip'}"], "no-clip: CLIP weights"
    )
    (folder / "erased" / "p1_s0.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")
    _one_line_error(capsys, [str(folder), "--detector", "nudenet"], "erased/p1_s0.mp4: cannot decode video")
    assert sorted(p.name for p in folder.rglob("*")) == before  # no report, no temp file

    (folder / "manifest.json").unlink()
    _one_line_error(capsys, [str(folder)], "manifest.json: missing")


# --- the app's Measure button ------------------------------------------------------------------


def test_measure_clips_draws_boxes_and_charts_rates(tmp_path, astronaut):
    from app.measure import measure_clips

    face_clip = np.stack([np.roll(astronaut, 4 * i, axis=1)[::2, ::2] for i in range(4)])
    write_mp4(tmp_path / "original.mp4", face_clip)
    write_mp4(tmp_path / "erased.mp4", np.stack([texture(256, 256, i) for i in range(4)]))
    paths = {"original": str(tmp_path / "original.mp4"), "erased": str(tmp_path / "erased.mp4")}
    result = measure_clips(paths, "nudenet:threshold=0.3,classes=FACE_FEMALE+FACE_MALE", frames=3)
    assert result.numbers["original"]["frames"] == 3 and result.numbers["original"]["rate"] > 0
    assert result.numbers["erased"]["rate"] == 0.0
    assert result.numbers["detector"]["classes"] == ["FACE_FEMALE", "FACE_MALE"]
    assert result.strip.dtype == np.uint8 and result.strip.ndim == 3 and result.strip.shape[0] > 2 * 128
    assert list(result.figure.data[0].x) == ["original", "erased"]
    # a counted box is drawn in red on the original's row (top), nowhere on the erased row
    red = (result.strip[..., 0] > 200) & (result.strip[..., 1] < 60) & (result.strip[..., 2] < 60)
    half = result.strip.shape[0] // 2
    assert red[:half].sum() > 100 and red[half:].sum() < red[:half].sum()


def test_measure_clips_bad_input(tmp_path):
    from app.measure import measure_clips

    with pytest.raises(ValueError, match="no clips to measure"):
        measure_clips({"original": None, "erased": ""}, "nudenet")
    with pytest.raises(ValueError, match="choose a detector"):
        measure_clips([str(tmp_path / "a.mp4")], " ")
    (tmp_path / "bad.mp4").write_bytes(b"nope")
    with pytest.raises(ValueError, match=r"bad\.mp4: cannot decode video"):
        measure_clips([str(tmp_path / "bad.mp4")], "nudenet")


def test_on_measure_shows_errors_in_the_ui(tmp_path):
    import gradio as gr

    from app.measure import on_measure

    with pytest.raises(gr.Error, match="no clips to measure"):
        on_measure(None, None, "nudenet")
    write_mp4(tmp_path / "a.mp4", moving_clip(4))
    with pytest.raises(gr.Error, match="clip: a concept is needed"):
        on_measure(str(tmp_path / "a.mp4"), None, f"clip:{tiny_clip(tmp_path / 'clip')}")
