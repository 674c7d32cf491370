"""The page as a browser sees it: ``python app.py`` in headless Chromium, driven over the DevTools protocol.

Skipped, with a one-line reason, when there is no Chromium: ``bash tests/run`` (README's test command)
installs the Debian ``chromium`` package first when it can (as root with apt-get). The browser
is spoken to through ``--remote-debugging-pipe`` (JSON messages on file descriptors 3 and 4), so no
websocket or Playwright package is needed. The test fails on any uncaught JavaScript exception or
``console.error``, on a blank screenshot, and when the title or the default pairs never render.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
]
TABS = {
    "1 · Concept": "prompt pairs",
    "2 · Layer map": "Compute layer map",
    "3 · Search": "Start search",
    "4 · Features & masks": "Analyse features",
    "5 · Erase & preview": "Generate original and erased",
    "6 · Export": "Build artifact and report",
}
"""Each tab and a text that shows it rendered."""

pytestmark = pytest.mark.browser


class Chromium:
    """A headless Chromium spoken to over the DevTools pipe (a minimal CDP client)."""

    def __init__(self, binary: str, profile: str) -> None:
        to_child, self._out = os.pipe()
        self._in, from_child = os.pipe()

        def fds_3_and_4() -> None:  # the pipe protocol reads fd 3 and writes fd 4
            a = fcntl.fcntl(to_child, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_child, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=fds_3_and_4,
            pass_fds=(3, 4),
        )
        os.close(to_child)
        os.close(from_child)
        self.events: list[dict] = []
        self._next_id = 0
        self._replies: dict[int, dict] = {}
        self._cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        while chunk := os.read(self._in, 1 << 16):
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                with self._cv:
                    if "id" in message:
                        self._replies[message["id"]] = message
                    else:
                        self.events.append(message)
                    self._cv.notify_all()

    def send(
        self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30
    ) -> dict:
        self._next_id += 1
        key = self._next_id
        message = {"id": key, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        with self._cv:
            if not self._cv.wait_for(lambda: key in self._replies, timeout):
                raise TimeoutError(f"no reply to {method} within {timeout} s")
            reply = self._replies.pop(key)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def open_page(self, width: int = 1280, height: int = 1000) -> str:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=session)
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        self.send("Emulation.setDeviceMetricsOverride", metrics, session=session)
        return session

    def evaluate(self, session: str, expression: str):
        result = self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session
        )
        return result["result"].get("value")

    def wait_for_text(self, session: str, text: str, timeout: float = 60) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if text in (self.evaluate(session, "document.body ? document.body.innerText : ''") or ""):
                return time.monotonic() - start
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared on the page within {timeout} s")

    def screenshot(self, session: str) -> bytes:
        return base64.b64decode(
            self.send("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
        )

    def errors(self) -> list[str]:
        """Uncaught exceptions, console.error calls and JavaScript log errors so far."""
        out = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                out.append(
                    details.get("exception", {}).get("description") or details.get("text", "exception")
                )
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                out.append(
                    "console.error: "
                    + " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
                )
            elif (
                method == "Log.entryAdded"
                and params["entry"]["level"] == "error"
                and params["entry"]["source"] == "javascript"
            ):
                out.append(params["entry"]["text"])
        return out

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            self.send("Browser.close", timeout=5)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def set_files(self, session: str, block_text: str, files: list[str]) -> None:
        """Put ``files`` into the file input of the block whose text contains ``block_text``."""
        found = self.evaluate(
            session,
            "(() => { const i = [...document.querySelectorAll('input[type=file]')].find(i => "
            f"(i.closest('.block') || document.body).innerText.includes({json.dumps(block_text)})); "
            "if (!i) return false; i.setAttribute('data-test-upload', '1'); return true; })()",
        )
        assert found, f"no file input in a block showing {block_text!r}"
        self.send("DOM.enable", session=session)
        root = self.send("DOM.getDocument", {"depth": -1}, session=session)["root"]["nodeId"]
        node = self.send(
            "DOM.querySelector", {"nodeId": root, "selector": "input[data-test-upload]"}, session=session
        )["nodeId"]
        self.send("DOM.setFileInputFiles", {"files": files, "nodeId": node}, session=session)
        self.evaluate(
            session, "document.querySelector('input[data-test-upload]').removeAttribute('data-test-upload')"
        )


def click(browser: Chromium, page: str, text: str, role: str = "button") -> None:
    """Click the visible button (or tab, ``role="tab"``) whose text is ``text``."""
    selector = "button[role=tab]" if role == "tab" else "button"
    clicked = browser.evaluate(
        page,
        f"(() => {{ const b = [...document.querySelectorAll({json.dumps(selector)})]"
        f".filter(b => b.offsetParent !== null).find(b => b.innerText.trim().startsWith({json.dumps(text)}));"
        " if (b) b.click(); return !!b; })()",
    )
    assert clicked, f"no {role} {text!r} on the page"


def text_of(browser: Chromium, page: str, elem_id: str) -> str:
    return (
        browser.evaluate(
            page,
            f"(() => {{ const e = document.getElementById({json.dumps(elem_id)}); return e ? e.innerText : ''; }})()",
        )
        or ""
    )


def rect(browser: Chromium, page: str, selector: str) -> dict | None:
    """The bounding box of the first element matching ``selector`` (None when there is none)."""
    return browser.evaluate(
        page,
        f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null; "
        "const r = e.getBoundingClientRect(); return {x: r.x, y: r.y + window.scrollY, w: r.width, h: r.height}; })()",
    )


def overlaps(a: dict, b: dict, slack: float = 1.0) -> bool:
    return not (
        a["x"] + a["w"] <= b["x"] + slack
        or b["x"] + b["w"] <= a["x"] + slack
        or a["y"] + a["h"] <= b["y"] + slack
        or b["y"] + b["h"] <= a["y"] + slack
    )


def plot_labels(browser: Chromium, page: str, elem_id: str) -> list[dict]:
    """Bounding boxes of a plotly chart's legend and text annotations (with their text)."""
    return browser.evaluate(
        page,
        f"(() => {{ const root = document.getElementById({json.dumps(elem_id)}); if (!root) return [];"
        " const boxes = [...root.querySelectorAll('g.legend, g.annotation')].map(g => {"
        " const r = g.getBoundingClientRect(); return {text: g.textContent.slice(0, 40), x: r.x, y: r.y,"
        " w: r.width, h: r.height}; }); return boxes.filter(b => b.w > 0 && b.h > 0); })()",
    )


def move_slider(browser: Chromium, page: str, label: str, value: float) -> None:
    """Move a gr.Slider as a drag does: set its range input, then release the pointer."""
    moved = browser.evaluate(
        page,
        "(() => { const r = document.querySelector("
        f"'input[type=range][aria-label=\"range slider for {label}\"]'); if (!r) return false;"
        f" r.value = {json.dumps(str(value))}; r.dispatchEvent(new Event('input', {{bubbles: true}}));"
        " r.dispatchEvent(new PointerEvent('pointerup', {bubbles: true})); return true; })()",
    )
    assert moved, f"no slider {label!r}"


def video_state(browser: Chromium, page: str, elem_id: str) -> tuple[str, int]:
    """(src, readyState) of the video in the component ``elem_id`` ("" and 0 when there is none)."""
    state = browser.evaluate(
        page,
        f"(() => {{ const v = document.querySelector('#{elem_id} video');"
        " return v ? [v.currentSrc || v.src || '', v.readyState] : ['', 0]; })()",
    )
    return state[0], state[1]


def wait_until(predicate, timeout: float, what: str, poll: float = 0.02) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(poll)
    raise AssertionError(f"{what} within {timeout} s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> float:
    """Seconds until ``url`` answers 200 (AssertionError with the app's output if it exits first)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"python app.py exited with code {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - start
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout} s")


@pytest.fixture()
def chromium() -> str:
    """The Chromium binary; skips the test (before the app is started) when there is none."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("no headless Chromium (bash tests/run installs it with apt-get when run as root)")
    return binary


@pytest.fixture()
def app_url(tmp_path):
    """``python app.py`` as a user runs it, on a free port; yields (url, the time it was started)."""
    with serve_app(tmp_path / "cache") as served:
        yield served


@contextlib.contextmanager
def serve_app(cache: Path):
    """``python app.py`` on a free port with its own activation cache: (url, start time)."""
    port = _free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "CLEAR_CACHE_DIR": str(cache),
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    env.pop("GRADIO_SERVER_PORT", None)
    env.pop("SPACE_ID", None)
    start = time.monotonic()
    cache.mkdir(parents=True, exist_ok=True)
    log = cache / "app.log"  # a file, not a pipe: nobody reads the app's output while it runs
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, text=True
        )
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_http(url, proc, log)
        yield url, start
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _not_blank(png: bytes) -> None:
    from PIL import Image, ImageStat

    image = Image.open(io.BytesIO(png)).convert("L")
    assert image.size[0] >= 1000, f"unexpected screenshot size {image.size}"
    spread = ImageStat.Stat(image).stddev[0]
    colors = len(image.getcolors(maxcolors=1 << 16) or [])
    assert spread > 10 and colors > 20, f"the page looks blank (stddev {spread:.1f}, {colors} grey levels)"


def test_page_renders_every_tab_without_javascript_errors(chromium, app_url, tmp_path):
    browser = Chromium(chromium, tempfile.mkdtemp(prefix="clear-chromium-", dir=tmp_path))
    url, started = app_url
    try:
        page = browser.open_page()
        browser.send("Page.navigate", {"url": url}, session=page)
        browser.wait_for_text(page, "CLEAR Workbench")
        browser.wait_for_text(page, "pairs from the built-in pack")  # the default pack, loaded on page load
        first_screen = time.monotonic() - started
        print(f"first useful screen {first_screen:.1f} s after `python app.py`")
        png = browser.screenshot(page)
        (tmp_path / "workbench.png").write_bytes(png)
        _not_blank(png)
        for tab, marker in TABS.items():
            clicked = browser.evaluate(
                page,
                "(() => { const b = [...document.querySelectorAll('button[role=tab]')]"
                f".find(b => b.innerText.trim() === {json.dumps(tab)}); if (b) b.click(); return !!b; }})()",
            )
            assert clicked, f"no tab named {tab!r}"
            browser.wait_for_text(page, marker, timeout=20)
        browser.wait_for_text(page, "Model minilm ready", timeout=90)  # the background load finished
        assert browser.errors() == [], "JavaScript errors on the page"
        assert first_screen < 60, f"the first screen took {first_screen:.1f} s"
    finally:
        browser.close()


GAMMA = "γ (erasure strength)"
CLIP_BUDGET_S = 2.0
"""How soon after the γ slider is released the new erased clip must be on the page (issue bar)."""
KITE_PAIRS = "\n".join(
    f'{{"positive": "a {k} kite over a beach", "negative": "a beach"}}' for k in ("red", "box", "stunt")
)


def _open(browser: Chromium, url: str, width: int = 1280, height: int = 1000) -> str:
    page = browser.open_page(width, height)
    browser.send("Page.navigate", {"url": url}, session=page)
    browser.wait_for_text(page, "pairs from the built-in pack")
    browser.wait_for_text(page, "Model minilm ready", timeout=120)
    return page


def _load_eraser(browser: Chromium, page: str, folder: Path) -> None:
    click(browser, page, "6 · Export", role="tab")
    browser.wait_for_text(page, "Continue from an artifact")
    browser.set_files(
        page, "The exported .zip", [str(folder / "eraser.json"), str(folder / "eraser.safetensors")]
    )
    time.sleep(1.0)  # the upload lands before the button reads it
    click(browser, page, "Load eraser")
    browser.wait_for_text(page, "Loaded the", timeout=60)


def _generate(browser: Chromium, page: str) -> None:
    click(browser, page, "5 · Erase", role="tab")
    browser.wait_for_text(page, "Generate original and erased")
    wait_until(  # entering the tab fills the prompt with an example of the loaded concept
        lambda: browser.evaluate(
            page,
            "(() => { const t = [...document.querySelectorAll('textarea')].find(t => "
            "(t.closest('.block') || document.body).innerText.startsWith('Prompt')); return t ? t.value : ''; })()",
        ),
        30,
        "the prompt was never filled",
    )
    click(browser, page, "Generate original and erased")
    wait_until(
        lambda: (
            "same initial latents" in text_of(browser, page, "media-info")
            and video_state(browser, page, "clip-erased")[1] >= 2
        ),
        120,
        "the first clips never showed",
    )
    browser.wait_for_text(page, "Testbed detector on", timeout=120)  # the rate over seeds follows


def test_gamma_slider_rerenders_the_clip_beside_it_and_new_pairs_leave_nothing_stale(
    chromium, app_url, tmp_path, small_run
):
    """The Erase tab as a visitor uses it: the erased clip sits beside the γ slider and a slider move
    brings the new clip within CLIP_BUDGET_S; labels on the page do not overlap; pasting other pairs
    empties every result and the header stops naming the eraser as theirs."""
    small_run.eraser.save(tmp_path / "eraser")
    browser = Chromium(chromium, tempfile.mkdtemp(prefix="clear-chromium-", dir=tmp_path))
    url, _started = app_url
    try:
        page = _open(browser, url)
        _load_eraser(browser, page, tmp_path / "eraser")
        _generate(browser, page)

        # the clip is next to the slider: side by side, both on the first screen
        slider = rect(browser, page, f'input[type=range][aria-label="range slider for {GAMMA}"]')
        clip = rect(browser, page, "#clip-erased")
        assert slider and clip and clip["x"] > slider["x"] + slider["w"], (slider, clip)
        assert clip["y"] < slider["y"] + slider["h"] and slider["y"] < clip["y"] + clip["h"]
        assert clip["y"] + clip["h"] < 1000, "the erased clip is below the first screen"

        # a move brings the new erased clip (its info names the new γ) within the budget
        seconds = []
        for gamma in (0.35, 1.35):
            before = video_state(browser, page, "clip-erased")[0]
            move_slider(browser, page, GAMMA, gamma)
            seconds.append(
                wait_until(
                    lambda g=gamma: (
                        f"γ = {g:g} ·" in text_of(browser, page, "media-info")
                        and video_state(browser, page, "clip-erased")[1] >= 2
                    ),
                    30,
                    f"the clip for γ = {gamma} never showed",
                )
            )
            assert video_state(browser, page, "clip-erased")[0] != before
        print(f"new erased clip after a γ move: {', '.join(f'{s:.2f} s' for s in seconds)}")
        assert max(seconds) <= CLIP_BUDGET_S, f"the erased clip took {max(seconds):.2f} s"
        browser.wait_for_text(page, "Leakage at γ = 1.35", timeout=180)  # the scores follow
        assert "Sample:" in text_of(browser, page, "erase-scores")

        # nothing overlaps: the calibration chart's legend and labels, the frame strip's rows
        labels = plot_labels(browser, page, "calibration-chart")
        assert len(labels) >= 2, labels
        for i, a in enumerate(labels):
            for b in labels[i + 1 :]:
                assert not overlaps(a, b), f"{a['text']!r} overlaps {b['text']!r}"
        strip = rect(browser, page, "#frame-strip img")
        label = rect(browser, page, "#frame-strip label[data-testid=block-label]:not(.sr-only)")
        assert strip and strip["h"] > 100 and label is None  # no caption laid over the row labels
        png = browser.screenshot(page)
        (tmp_path / "erase.png").write_bytes(png)
        _not_blank(png)

        # other pairs pasted: the concept is replaced whole and no result of the old one remains
        click(browser, page, "1 · Concept", role="tab")
        click(browser, page, "Upload or paste pairs")
        browser.evaluate(
            page,
            "(() => { const t = [...document.querySelectorAll('textarea')].find(t => "
            "(t.closest('.block') || document.body).innerText.includes('Paste pairs'));"
            f" t.value = {json.dumps(KITE_PAIRS)}; t.dispatchEvent(new Event('input', {{bubbles: true}})); }})()",
        )
        time.sleep(0.5)
        click(browser, page, "Use pasted pairs")
        browser.wait_for_text(page, "3 pairs from pasted text")
        status = text_of(browser, page, "session-status")
        assert "Pairs custom: 3" in status and "held-out" not in status
        assert "made for parachute, not these pairs" in status  # the eraser never passes for theirs
        click(browser, page, "5 · Erase", role="tab")
        wait_until(lambda: video_state(browser, page, "clip-erased")[0] == "", 10, "the old clip stayed")
        assert text_of(browser, page, "erase-scores").strip() == ""
        assert text_of(browser, page, "media-info").strip() == ""
        assert browser.errors() == [], "JavaScript errors on the page"
    finally:
        browser.close()


def screenshot(out: Path, eraser: Path, prompt: str | None = None) -> None:
    """assets/screenshot.png: the Erase & preview tab of ``python app.py`` with the eraser in ``eraser``
    loaded, its clips generated and scores measured, as headless Chromium shows it (1280 px wide)."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        raise SystemExit("no chromium: install it (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="clear-shot-") as tmp, serve_app(Path(tmp) / "cache") as (url, _):
        browser = Chromium(binary, str(Path(tmp) / "profile"))
        try:
            page = _open(browser, url, 1280, 1160)
            _load_eraser(browser, page, eraser)
            _generate(browser, page)
            click(browser, page, "Erase")
            browser.wait_for_text(page, "Leakage at γ", timeout=300)
            time.sleep(2)
            browser.evaluate(page, "window.scrollTo(0, 0)")
            png = browser.screenshot(page)
            _not_blank(png)
            out.write_bytes(png)
        finally:
            browser.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Regenerate the README's screenshot of the app.")
    parser.add_argument("--screenshot", type=Path, required=True, help="PNG to write (assets/screenshot.png)")
    parser.add_argument(
        "--eraser", type=Path, required=True, help="eraser folder (python -m clear_core search ... --out DIR)"
    )
    args = parser.parse_args()
    screenshot(args.screenshot, args.eraser)
