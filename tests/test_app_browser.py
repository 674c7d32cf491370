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
    "5 · Erase & preview": "Original vs erased video",
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 90) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"python app.py exited with code {proc.returncode}:\n{proc.stdout.read()}")
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
    """``python app.py`` as a user runs it, on a free port; yields (url, seconds until it answered)."""
    port = _free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "CLEAR_CACHE_DIR": str(tmp_path / "cache"),
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    env.pop("GRADIO_SERVER_PORT", None)
    env.pop("SPACE_ID", None)
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_http(url, proc)
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
