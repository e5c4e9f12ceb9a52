"""The learners of bench.class_load: what each one sends, and how fast.

* `WsLearner`: a websocket client (bench.st_client) that opens the page (with the model payload and the
  studio's first-frame signal, which brings the map), then acts at human pace (`Pace`): bursts of
  slider releases, map clicks, pad strokes, uploads. Every reply is checked: it must show what was done.
* `browser_learners`: real headless Chromium pages that drag a slider with the mouse and wait for the
  page's summary line to show the released code.
* `drawing_data_url`, `photo_bytes`: a pad drawing and an upload, different each time (no cache hit).

Each timed action goes into a `Tally` as (start offset, seconds); each failure as an error line.
"""

from __future__ import annotations

import asyncio
import base64
import io
import math
import random
import re
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Sequence

from PIL import Image, ImageDraw, ImageFilter

from bench.st_client import RunResult, SessionError, StreamlitClient, query_value
from common.paths import REPO_ROOT

PHOTO = REPO_ROOT / "tests" / "assets" / "digit_photo.jpg"
SLIDER_STEP = 0.05
SLIDER_SPAN = 2.5  # learners keep to +-2.5 of the +-4 sliders, where the digits are
PAD_SIZE, PAD_STROKE = 280, 22  # as app/studio.py
ACTIONS = ("release", "map", "draw", "upload")
ATLAS_SIZE_RE = re.compile(r"map of the ([\d,]+) encoded")


@dataclass(frozen=True)
class Pace:
    """How fast a learner acts (seconds). Defaults: a learner thinks 3-8 s between actions, drags a slider
    2-6 times in a row with 1-3 s between releases, and picks a slider burst 60 % of the time."""

    think: tuple[float, float] = (3.0, 8.0)
    release_gap: tuple[float, float] = (1.0, 3.0)
    burst: tuple[int, int] = (2, 6)
    weights: tuple[float, float, float, float] = (0.6, 0.15, 0.15, 0.1)  # release burst, map, draw, upload


@dataclass
class Tally:
    """Every timed action of one class: kind -> [(start offset s, seconds)], and the errors."""

    samples: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add(self, kind: str, start: float, seconds: float) -> None:
        self.samples.setdefault(kind, []).append((start, seconds))

    def error(self, what: str) -> None:
        self.errors.append(what)

    def times(self, kind: str, after: float = -math.inf) -> list[float]:
        return [s for t, s in self.samples.get(kind, []) if t >= after]

    def count(self, kind: str) -> int:
        return len(self.samples.get(kind, []))


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile (nan when empty)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# ---- what learners send ----------------------------------------------------------------------

def drawing_data_url(rng: random.Random) -> str:
    """A PNG data URL of a digit-like drawing on the 280-px pad (white on black), different each time."""
    im = Image.new("L", (PAD_SIZE, PAD_SIZE))
    d = ImageDraw.Draw(im)
    j = lambda v: v + rng.uniform(-18, 18)  # noqa: E731 - a hand's wobble
    shape = rng.choice(("one", "zero", "seven"))
    if shape == "one":
        d.line([(j(140), j(40)), (j(140), j(240))], fill=255, width=PAD_STROKE)
    elif shape == "zero":
        d.ellipse([j(70), j(35), j(210), j(245)], outline=255, width=PAD_STROKE)
    else:
        d.line([(j(70), j(50)), (j(210), j(50)), (j(120), j(245))], fill=255, width=PAD_STROKE, joint="curve")
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def photo_bytes(rng: random.Random, long_side: int = 0) -> bytes:
    """The repo's phone photo of a digit, slightly rotated and re-encoded (unique bytes: no cache hit);
    scaled to `long_side` pixels when > 0 (a phone's 4032 px, say)."""
    with Image.open(PHOTO) as im:
        im = im.convert("RGB").rotate(rng.uniform(-4, 4), resample=Image.Resampling.BILINEAR, fillcolor=(235, 235, 235))
        if long_side > 0:
            scale = long_side / max(im.size)
            im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.BICUBIC)
            im = im.filter(ImageFilter.GaussianBlur(0.6))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=rng.randint(85, 95))
        return buf.getvalue()


def code_text(z: Sequence[float]) -> str:
    """The code as the page's summary line writes it: '+0.05, -1.20, ...'."""
    return ", ".join(f"{v + 0.0:+.2f}" for v in z)


# ---- one websocket learner ------------------------------------------------------------------

class WsLearner:
    """One learner on a websocket: `run()` opens the page, then acts until `stop_at` (time.perf_counter()).

    Its first round (every action once, in its own order) may run past `stop_at`, by `grace` seconds at
    most, so that every class measures every action; after it, actions are drawn with `pace.weights`."""

    def __init__(self, url: str, t_zero: float, stop_at: float, grace: float, pace: Pace, rng: random.Random,
                 tally: Tally, photo_side: int = 0, timeout: float = 60.0) -> None:
        self.client = StreamlitClient(url, timeout=timeout)
        self.t_zero, self.stop_at, self.grace = t_zero, stop_at, grace
        self.pace, self.rng, self.tally, self.photo_side = pace, rng, tally, photo_side
        self.atlas_size, self.z = 300, [0.0] * 8

    async def run(self, start_delay: float) -> None:
        await asyncio.sleep(start_delay)
        try:
            await self.open()
            tour = list(ACTIONS)
            self.rng.shuffle(tour)
            actions = {"release": self.release_burst, "map": self.click_map, "draw": self.draw, "upload": self.upload}
            while True:
                await asyncio.sleep(self.rng.uniform(*self.pace.think))
                now = time.perf_counter()
                if (not tour and now >= self.stop_at) or now >= self.stop_at + self.grace:
                    break
                await actions[tour.pop() if tour else self.rng.choices(ACTIONS, weights=self.pace.weights)[0]]()
        except (SessionError, OSError, asyncio.TimeoutError) as e:
            self.tally.error(f"session: {type(e).__name__}: {e}")
        except Exception as e:  # noqa: BLE001 - one learner's failure is a figure, not the end of the class
            self.tally.error(f"learner crashed: {type(e).__name__}: {e}")
        finally:
            await self.client.close()

    def _now(self) -> float:
        return time.perf_counter() - self.t_zero

    async def _timed(self, kind: str, request: Callable[[], Awaitable[RunResult]],
                     shows: Callable[[RunResult], bool]) -> RunResult:
        start = self._now()
        r = await request()
        self.tally.add(kind, start, r.seconds)
        check(self.tally, kind, r.ok and shows(r), r.exceptions + r.error_alerts)
        return r

    async def open(self) -> None:
        """The page, then the studio's first-frame signal (the map's run); timed together as "open"."""
        start = self._now()
        first = await self.client.open()
        check(self.tally, "open", first.ok and "studio" in first.keys, first.exceptions + first.error_alerts)
        ready = await self.client.ready()
        check(self.tally, "open", ready.ok and "latent_map" in ready.keys, ready.exceptions + ready.error_alerts)
        self.tally.add("open", start, first.seconds + ready.seconds)
        size = next((m for m in map(ATLAS_SIZE_RE.search, first.texts) if m), None)
        self.atlas_size = int(size.group(1).replace(",", "")) if size else self.atlas_size
        link_code = query_value(self.client.query_string, "z")  # the page keeps the code in its URL
        self.z = [0.0] * (len(link_code.split(",")) if link_code else 8)

    async def release_burst(self) -> None:
        """A few drags of random sliders, each ending in a release that sends the whole code."""
        for i in range(self.rng.randint(*self.pace.burst)):
            if i:
                await asyncio.sleep(self.rng.uniform(*self.pace.release_gap))
                if time.perf_counter() >= self.stop_at:
                    break
            steps = int(SLIDER_SPAN / SLIDER_STEP)
            self.z[self.rng.randrange(len(self.z))] = round(self.rng.randint(-steps, steps) * SLIDER_STEP, 2)
            expected = f"z = [{code_text(self.z)}]"
            await self._timed("release", lambda: self.client.release(self.z), lambda r: r.has_text(expected))

    async def click_map(self) -> None:
        index = self.rng.randrange(self.atlas_size)
        r = await self._timed("map", lambda: self.client.click_map(index), lambda r: r.has_text(f"test #{index} "))
        self.z = parse_code(r.texts, len(self.z)) or self.z  # the clicked digit's code: later drags start there

    async def draw(self) -> None:
        url = drawing_data_url(self.rng)
        r = await self._timed("draw", lambda: self.client.stroke(url), lambda r: "drawing_posterior" in r.keys)
        self.z = parse_code(r.texts, len(self.z)) or self.z  # the drawing's code

    async def upload(self) -> None:
        data, name = photo_bytes(self.rng, self.photo_side), f"digit-{self.rng.randrange(10**6)}.jpg"
        await self._timed("upload", lambda: self.client.upload(name, data, "image/jpeg"),
                          lambda r: "upload_posterior" in r.keys)


CODE_RE = re.compile(r"z = \[([^\]]*)\]")


def parse_code(texts: Sequence[str], dim: int) -> list[float] | None:
    """The code the page's summary line shows (the first 'Code from ...: z = [...]' line), or None."""
    for text in texts:
        if text.startswith("Code from") and (m := CODE_RE.search(text)):
            values = [float(v) for v in m.group(1).split(",")]
            if len(values) == dim:
                return values
    return None


def check(tally: Tally, kind: str, ok: bool, problems: list[str]) -> None:
    if not ok:
        tally.error(f"{kind}: " + ("; ".join(p[:200] for p in problems) if problems else "the page did not show the result"))


# ---- real browsers --------------------------------------------------------------------------

BROWSER_CODE_JS = """() => Array.from(document.querySelectorAll('*')).flatMap(e => e.shadowRoot ?
  Array.from(e.shadowRoot.querySelectorAll("input[type='range'][aria-label^='z']")) : [])
  .sort((a, b) => Number(a.getAttribute('aria-label').slice(1)) - Number(b.getAttribute('aria-label').slice(1)))
  .map(i => { const v = Number(i.value) + 0; return (v >= 0 ? '+' : '') + v.toFixed(2); }).join(', ')"""
SUMMARY_SHOWS_JS = """v => [...document.querySelectorAll("[data-testid='stCaptionContainer']")]
  .some(e => e.innerText.startsWith('Code from') && e.innerText.includes(v))"""


def browser_learners(url: str, count: int, start_delays: list[float], stop_at: float, t_zero: float, pace: Pace,
                     rng: random.Random, tally: Tally, timeout: float) -> None:
    """`count` Chromium pages (one browser, a context each) in this thread: open, then drag-and-release
    a slider with the mouse at `pace`, timing release -> the summary line showing the new code."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    from bench.harness import CHROMIUM_ARGS, CONNECTED, chromium_path

    t = lambda: time.perf_counter() - t_zero  # noqa: E731
    ms = int(timeout * 1000)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            pages = []
            for delay in start_delays:
                time.sleep(max(0.0, t_zero + delay - time.perf_counter()))  # the learner's arrival time
                try:
                    page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
                    start = t()
                    page.goto(url, timeout=ms)
                    page.wait_for_selector(CONNECTED, timeout=ms, state="attached")
                    page.wait_for_function("() => globalThis.__vaeStudio?.stats?.firstFrame != null", timeout=ms)
                    tally.add("browser_open", start, t() - start)
                    pages.append(page)
                except PlaywrightError as e:
                    tally.error(f"browser open: {str(e).splitlines()[0]}")
            next_at = [time.perf_counter() + rng.uniform(*pace.think) for _ in pages]
            released = [False] * len(pages)  # like the websocket learners, each page finishes its first release
            hard_stop = stop_at + max(30.0, stop_at - t_zero)
            while pages and (time.perf_counter() < stop_at or not all(released)) and time.perf_counter() < hard_stop:
                i = min((k for k in range(len(pages)) if time.perf_counter() < stop_at or not released[k]),
                        key=next_at.__getitem__)
                time.sleep(max(0.0, next_at[i] - time.perf_counter()))
                try:
                    released[i] = browser_release(pages[i], rng, tally, t, ms) or released[i]
                except PlaywrightError as e:
                    tally.error(f"browser release: {str(e).splitlines()[0]}")
                    released[i] = True  # counted as an error; do not retry past the end
                next_at[i] = time.perf_counter() + rng.uniform(*pace.release_gap)
        finally:
            browser.close()


def browser_release(page, rng: random.Random, tally: Tally, t: Callable[[], float], ms: int) -> bool:  # noqa: ANN001
    """Mouse down on a slider's track, a few moves, up (the release); time until the page shows the code.
    False when the drag ended on the value it started from (nothing is sent then)."""
    slider = page.locator(f"input[type='range'][aria-label='z{rng.randrange(8)}']")
    box = slider.bounding_box()
    if box is None:
        raise RuntimeError("no slider on the page")
    before = page.evaluate(BROWSER_CODE_JS)
    y = box["y"] + box["height"] / 2
    x0 = box["x"] + box["width"] * rng.uniform(0.25, 0.75)
    x1 = x0 + rng.choice((-1, 1)) * box["width"] * rng.uniform(0.05, 0.2)
    page.mouse.move(x0, y)
    page.mouse.down()
    for k in range(1, 9):
        page.mouse.move(x0 + (x1 - x0) * k / 8, y)
    start = t()
    page.mouse.up()
    code = page.evaluate(BROWSER_CODE_JS)
    if code == before:
        return False  # the drag ended where it began: no release reaches the server
    page.wait_for_function(SUMMARY_SHOWS_JS, arg=code, timeout=ms)
    tally.add("browser_release", start, t() - start)
    return True
