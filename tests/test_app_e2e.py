"""The workbench served on a local port and driven through ``gradio_client``, like a script would.

One full flow (pack → table → layer map → short search → erase → export → upload), plus what only a
real server can show: an error keeps the visitor's pairs, a "Stop" request reaches the search running
in the same session, and a second visitor sees none of the first one's results.
"""

from __future__ import annotations

import json
import socket
import time
import zipfile
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from app.launch import launch_options
from app.layout import build_demo

N_PAIRS = 24
SEARCH_ARGS = (20, 256, 0, True, "SAE (CLEAR)", "contrastive", "Gumbel-softmax search", 8, "0, 1, 2")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app on a free local port for this module (its own activation cache)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLEAR_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        demo = build_demo()
        demo.queue(default_concurrency_limit=2)
        opts = launch_options({"GRADIO_SERVER_PORT": str(_free_port())})
        demo.launch(prevent_thread_lock=True, quiet=True, **opts)
        try:
            yield f"http://127.0.0.1:{opts['server_port']}/"
        finally:
            demo.close()


def _client(url: str, tmp_path) -> Client:
    return Client(url, verbose=False, download_files=str(tmp_path), analytics_enabled=False)


def _plot(value) -> dict:
    """A gr.Plot output as plotly JSON."""
    return json.loads(value["plot"]) if isinstance(value["plot"], str) else value["plot"]


def test_full_flow(server, tmp_path):
    client = _client(server, tmp_path)

    # 1. pack, then the first 24 rows of its table as edited pairs
    table, name, implicit, neutral, summary, status, keep = client.predict("parachute", api_name="/load_pack")
    assert name == "parachute" and len(table["data"]) == 240 and "240 pairs" in summary
    rows = table["data"][:N_PAIRS]
    summary, status, keep = client.predict(
        {"headers": ["positive", "negative"], "data": rows}, name, implicit, neutral, api_name="/use_table"
    )
    assert f"{N_PAIRS} pairs" in summary

    # a bad edit is refused with the library's message, and the 24 pairs stay
    bad = {"headers": ["positive", "negative"], "data": [*rows, ["a cat with a parachute", " "]]}
    with pytest.raises(AppError, match=f"table, line {N_PAIRS + 1}: the negative prompt is empty"):
        client.predict(bad, name, implicit, neutral, api_name="/use_table")

    # the model loader (cached: this returns at once once loaded)
    info, status = client.predict("minilm", api_name="/load_model")
    assert "6 blocks" in info and "Model** `minilm` ready" in status

    # 2. layer map, streamed
    job = client.submit("pca", "mean", api_name="/layer_map")
    sep, proj, lm_status, status = job.result(timeout=120)
    assert len(job.outputs()) > 2, "the layer map should stream partial results"
    assert f"{N_PAIRS} pairs" in lm_status and "done" in lm_status
    assert _plot(sep)["layout"]["title"]["text"].startswith("parachute")

    # 3. short search: live charts, then the eraser and the chosen block on the layer map
    job = client.submit(*SEARCH_ARGS, api_name="/search")
    final = job.result(timeout=180)
    probs, losses, search_status, summary, calibration, sep, _proj, gamma, status = final
    assert len(job.outputs()) > 3, "the search should stream chart updates"
    assert "Erase *parachute* at block" in summary and "Eraser** parachute at block" in status
    chosen = [t["name"] for t in _plot(probs)["data"] if t["name"].endswith("(chosen)")]
    assert len(chosen) == 1
    assert any("chosen" in str(a.get("text", "")) for a in _plot(sep)["layout"]["annotations"])
    assert gamma in (1.0, 2.0)
    sweep = _plot(calibration)  # the calibration's γ sweep, drawn in the Erase tab
    assert "leakage: positive prompts" in {t["name"] for t in sweep["data"]}
    assert any(s["x0"] == s["x1"] == gamma for s in sweep["layout"]["shapes"])  # the chosen γ

    # 5. erase one prompt at the calibrated γ
    scores, this, tokens, subtracted, numbers = client.predict(
        "a skydiver with a parachute over green fields", gamma, api_name="/erase"
    )
    assert numbers["gamma"] == gamma and 0 < numbers["prompt"]["cosine_original_vs_erased"] < 1
    assert "Leakage" in scores and "concept probability" in this
    bars = _plot(subtracted)["data"][0]
    assert bars["orientation"] == "h" and bars["y"] == [
        f"#{s['feature']}" for s in numbers["prompt"]["subtracted"]
    ]

    # 6. export, then continue from the uploaded artifact
    files, message = client.predict(api_name="/export")
    archive = next(f for f in files if f.endswith(".zip"))
    with zipfile.ZipFile(archive) as zf:
        assert "eraser.safetensors" in zf.namelist()
    report = json.loads(Path(next(f for f in files if f.endswith("report.json"))).read_text(encoding="utf-8"))
    assert report["settings"]["search"]["steps"] == 20 and report["eraser"]["default_gamma"] == gamma
    message, _calibration, loaded_gamma, status = client.predict(
        [handle_file(archive)], api_name="/load_eraser"
    )
    assert "Loaded the **sae** eraser for *parachute*" in message and loaded_gamma == gamma


def test_stop_reaches_the_running_search_and_visitors_are_isolated(server, tmp_path):
    client = _client(server, tmp_path)
    client.predict("parachute", api_name="/load_pack")
    long_search = (2000, *SEARCH_ARGS[1:-1], "0, 1")
    job = client.submit(*long_search, api_name="/search")
    deadline = time.monotonic() + 120
    while not any("step" in str(o[2]) for o in job.outputs()):
        assert time.monotonic() < deadline and not job.done(), "the search never reported a step"
        time.sleep(0.2)
    # a second visitor's mistake is reported at once, not after the first visitor's search
    start = time.monotonic()
    with pytest.raises(AppError, match="no prompt pairs yet"):
        _client(server, tmp_path).predict(*SEARCH_ARGS, api_name="/check_search")
    assert time.monotonic() - start < 15 and not job.done()
    assert "stopping" in client.predict(api_name="/stop_search")
    summary = job.result(timeout=120)[3]
    assert "stopped early" in summary

    other = _client(server, tmp_path)  # a second visitor: its own session, no eraser
    with pytest.raises(AppError, match="no eraser yet"):
        other.predict("a parachute", 1.0, api_name="/erase")
    with pytest.raises(AppError, match="no prompt pairs yet"):
        other.predict(*SEARCH_ARGS, api_name="/search")


def test_upload_errors_name_the_users_file_and_keep_the_pairs(server, tmp_path):
    client = _client(server, tmp_path)
    client.predict("parachute", api_name="/load_pack")
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text('{"positive": "a cat"}\n')
    with pytest.raises(AppError) as err:
        client.predict(handle_file(str(garbage)), "", "", "", api_name="/upload_concept")
    assert str(err.value) == "garbage.jsonl, line 1: missing key 'negative'"  # no /tmp/gradio/<hash>/
    client.predict(*SEARCH_ARGS, api_name="/check_search")  # passes: the session kept its pairs
    fresh = _client(server, tmp_path)
    with pytest.raises(AppError, match="no prompt pairs yet"):  # (the same check fails without pairs)
        fresh.predict(*SEARCH_ARGS, api_name="/check_search")
