"""Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe): no driver, no port.

Chromium reads JSON commands, each ended by a NUL byte, from its fd 3 and answers on fd 4. One page target is
opened and attached in flat mode, so every page command carries its session id. Events are kept so a test can
read what the page requested.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--mute-audio", "--remote-debugging-pipe"]
TIMEOUT_S = 60.0


def chromium() -> str | None:
    """The Chromium binary (Debian's `chromium`, or a chrome on the path), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Browser:
    """One headless Chromium with one page; use as a context manager."""

    def __init__(self, binary: str) -> None:
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        to_child, self._write = os.pipe()
        self._read, from_child = os.pipe()

        def fds() -> None:  # in the child: the pipe ends become fds 3 and 4, inherited by chromium
            a, b = os.dup(to_child), os.dup(from_child)
            os.dup2(a, 3)
            os.dup2(b, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        self.proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=fds, pass_fds=(3, 4))
        os.close(to_child)
        os.close(from_child)
        self._buffer = b""
        self._next = 0
        self.events: list[dict] = []
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Network", "Runtime"):
            self.page(f"{domain}.enable")

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):  # already gone: killed below
            self.send("Browser.close", timeout=10)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._write, self._read):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self.profile, ignore_errors=True)

    def _message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not answer")
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise RuntimeError(f"chromium closed the pipe (exit {self.proc.poll()})")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = TIMEOUT_S) -> dict:
        """One command; waits for its answer (events that arrive meanwhile are kept)."""
        self._next += 1
        message = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._message(deadline)
            if answer.get("id") == self._next:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)

    def page(self, method: str, params: dict | None = None) -> dict:
        return self.send(method, params, self.session)

    def wait_event(self, method: str, timeout: float = TIMEOUT_S) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(i)
            self.events.append(self._message(deadline))

    def size(self, width: int, height: int) -> None:
        self.page("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})

    def open(self, path: Path) -> None:
        """Load a local file and wait for its load event."""
        self.events = [e for e in self.events if e.get("method") != "Page.loadEventFired"]
        self.page("Page.navigate", {"url": Path(path).absolute().as_uri()})
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str):
        """A JavaScript expression's value (promises awaited)."""
        result = self.page("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        params: dict = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            width, height = self.evaluate("[document.documentElement.scrollWidth, "
                                          "document.documentElement.scrollHeight]")
            params["clip"] = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
        data = self.page("Page.captureScreenshot", params)["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def requests(self) -> list[str]:
        """Every URL the page asked for since it was opened."""
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]


# ---- the report's checks (tests/test_report.py, tests/test_demo.py) ------------------------------------------
BLANK_CHECK = """
Promise.all([...document.images].map(async (im) => {
  try { await im.decode(); } catch (e) { return {alt: im.alt, ok: false, why: 'does not decode'}; }
  const c = document.createElement('canvas');
  c.width = Math.min(im.naturalWidth, 400); c.height = Math.min(im.naturalHeight, 400);
  const g = c.getContext('2d');
  g.drawImage(im, 0, 0, c.width, c.height);
  const px = g.getImageData(0, 0, c.width, c.height).data;
  let lo = 765, hi = 0;
  for (let i = 0; i < px.length; i += 4) {
    const v = px[i] + px[i + 1] + px[i + 2]; lo = Math.min(lo, v); hi = Math.max(hi, v);
  }
  return {alt: im.alt, ok: im.naturalWidth > 0 && hi - lo > 60, width: im.naturalWidth, range: hi - lo};
}))
"""
SCROLL = "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
VERDICT = ("(() => { const r = document.getElementById('verdict-text').getBoundingClientRect(); "
           "return [r.top, r.bottom, window.innerHeight]; })()")
SIZES = ((1280, 800), (390, 844))  # a laptop, a phone


def check_page(page: Path, shots: Path) -> dict:
    """Open the page at each size; return what the checks read; leave report-<width>.png in `shots`."""
    shots.mkdir(parents=True, exist_ok=True)
    seen: dict = {}
    binary = chromium()
    if binary is None:
        raise RuntimeError("no chromium on the path")
    with Browser(binary) as browser:
        for width, height in SIZES:
            browser.size(width, height)
            browser.open(page)
            seen[width] = {"scroll": browser.evaluate(SCROLL), "verdict": browser.evaluate(VERDICT)}
            browser.screenshot(shots / f"report-{width}.png")
        seen["images"] = browser.evaluate(BLANK_CHECK)
        seen["requests"] = browser.requests()
    return seen


def page_problems(seen: dict) -> list[str]:
    """What is wrong with the page as the browser saw it ([] when nothing): an image that does not decode or is
    blank, a sideways scroll, a verdict below the first screen, a request that is not the file or a data: URI."""
    out = [f"image {i['alt']!r} does not decode or is blank ({i})" for i in seen["images"] if not i["ok"]]
    for width, _ in SIZES:
        scroll_width, client_width = seen[width]["scroll"]
        if scroll_width > client_width:
            out.append(f"horizontal scroll at {width} px: {scroll_width} > {client_width}")
    top, bottom, height = seen[1280]["verdict"]
    if top < 0 or bottom > height:
        out.append(f"the verdict is not on the first screen at 1280x{height}: {top:.0f}-{bottom:.0f} px")
    out += [f"request leaves the page: {u[:120]}" for u in seen["requests"] if not u.startswith(("file://", "data:"))]
    if not seen["requests"]:
        out.append("the browser saw no request at all (not even the page)")
    return out
