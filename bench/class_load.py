"""A class on one server: `python -m bench.class_load [--learners 10,30,60,100] [--duration S] [--browsers K]`.

For each class size N it starts the real app (`streamlit run streamlit_app.py`, bench.harness.AppServer,
127.0.0.1 only) over the models folder, opens one page to warm it up, then lets N learners in over
`--ramp` seconds and keeps them working for `--duration` seconds:

* N - K learners are websocket clients (bench.st_client) speaking Streamlit's own protocol: they load
  the page, receive the model payload, send the studio's first-frame signal (which brings the map),
  then act at human pace (bench.class_load.Pace): bursts of slider releases (a drag sends nothing
  until the release: app/frontend/studio.js), clicks on the map, strokes on the drawing pad (a PNG
  of a hand-drawn-like digit, different each time) and uploads (the repo's phone photo of a digit,
  jittered and re-encoded so no upload hits the analysis cache). Each learner first tries every
  action once, in its own order, then picks at random (weights in Pace).
* K learners are real headless Chromium pages (Debian chromium + playwright): they open the page and
  drag a slider with the mouse, release it, and wait until the page's summary line shows the code.

Every learner finishes its first round (each action once; a browser page: one release) even past the
end of the run, so each size measures every action, unless the server is so far behind that the
round would end more than max(30 s, duration) late; after that round it stops at the end of the run.

Printed per N (times from each request to the end of the script run it started, i.e. the page is
complete; "steady" = actions started after every learner has opened its page):
release -> page p50/p95, upload -> result p95, draw / map-click p95, page open p95 (load, connect, the
payload, the first run and the map's run), the browser pages' release -> page, server RSS (idle
after the warm-up, peak during the class, after everyone left plus `--settle` seconds), errors
(exceptions on the page, error boxes, a reply that does not show the action, timeouts, dropped
sockets), the server's CPU seconds per learner-minute (what a learner costs, whatever the machine's
load), the event loop's worst lag (if high, the load generator itself was the limit) and the load
average. A size "holds" when the steady release p95 <= 500 ms, RSS peak <= 1.5 GB and there are no
errors; the last line names the largest N measured that holds.

Everything runs on this machine: the learners' own CPU (and Chromium's) competes with the server's.
Traffic goes only to 127.0.0.1, and every learner stops at the end of its run (bounded in count and time).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import math
import os
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from PIL import Image, ImageDraw, ImageFilter

from bench.harness import AppServer
from bench.st_client import SessionError, StreamlitClient, query_value
from common.paths import REPO_ROOT

PHOTO = REPO_ROOT / "tests" / "assets" / "digit_photo.jpg"
TARGET_RELEASE_P95_MS = 500.0
TARGET_RSS_MB = 1500.0  # 1.5 GB, decimal
SLIDER_STEP = 0.05
SLIDER_SPAN = 2.5  # learners keep to +-2.5 of the +-4 sliders, where the digits are
PAD_SIZE, PAD_STROKE = 280, 22  # as app/studio.py
ACTIONS = ("release", "map", "draw", "upload")


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


@dataclass
class ClassResult:
    """The figures of one class size."""

    learners: int
    browsers: int
    duration_s: float
    tally: Tally
    steady_after_s: float
    rss_idle_mb: float
    rss_peak_mb: float
    rss_after_mb: float
    loop_lag_max_ms: float
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    server_cpu_s: float  # CPU seconds the server used during the class
    wall_s: float  # how long the class lasted (arrivals, work, stragglers)

    @property
    def cpu_per_learner_min(self) -> float:
        """Server CPU seconds per learner per minute of class: a load-independent cost of a learner."""
        return self.server_cpu_s / (self.learners * self.wall_s / 60)

    def p(self, kind: str, q: float, steady: bool = False) -> float:
        """Quantile q of kind's times in ms (nan if none)."""
        return quantile(self.tally.times(kind, self.steady_after_s if steady else -math.inf), q) * 1000

    @property
    def holds(self) -> bool:
        release = self.p("release", 0.95, steady=True)
        return (not self.tally.errors and release <= TARGET_RELEASE_P95_MS and self.rss_peak_mb <= TARGET_RSS_MB
                and self.tally.count("release") > 0)


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

ATLAS_SIZE_RE = re.compile(r"map of the ([\d,]+) encoded")


async def ws_learner(url: str, start_delay: float, stop_at: float, t_zero: float, pace: Pace, rng: random.Random,
                     tally: Tally, photo_side: int, timeout: float, grace: float) -> None:
    """One learner: open the page, then act at `pace` until `stop_at` (time.perf_counter()); its first
    round of actions may run past it, by `grace` seconds at most."""
    await asyncio.sleep(start_delay)
    client = StreamlitClient(url, timeout=timeout)
    t = lambda: time.perf_counter() - t_zero  # noqa: E731
    try:
        start = t()
        first = await client.open()
        check(tally, "open", first.ok, first.exceptions + first.error_alerts)
        sizes = [ATLAS_SIZE_RE.search(text) for text in first.texts]
        atlas_size = next((int(m.group(1).replace(",", "")) for m in sizes if m), 300)
        ready = await client.ready()
        check(tally, "open", ready.ok and "latent_map" in ready.keys, ready.exceptions + ready.error_alerts)
        tally.add("open", start, first.seconds + ready.seconds)
        link_code = query_value(client.query_string, "z")  # the page keeps the code in its URL
        dim = len(link_code.split(",")) if link_code else 8
        z = [0.0] * dim
        tour = list(ACTIONS)
        rng.shuffle(tour)
        while True:
            await asyncio.sleep(rng.uniform(*pace.think))
            now = time.perf_counter()
            if (not tour and now >= stop_at) or now >= stop_at + grace:
                break  # the first round (every action once) is finished unless the server is hopelessly behind
            action = tour.pop() if tour else rng.choices(ACTIONS, weights=pace.weights)[0]
            if action == "release":
                for i in range(rng.randint(*pace.burst)):
                    if i:
                        await asyncio.sleep(rng.uniform(*pace.release_gap))
                    if i and time.perf_counter() >= stop_at:
                        break
                    d = rng.randrange(dim)
                    z[d] = round(rng.randint(-int(SLIDER_SPAN / SLIDER_STEP), int(SLIDER_SPAN / SLIDER_STEP)) * SLIDER_STEP, 2)
                    start = t()
                    r = await client.release(z)
                    tally.add("release", start, r.seconds)
                    check(tally, "release", r.ok and r.has_text(f"z = [{code_text(z)}]"), r.exceptions + r.error_alerts)
            elif action == "map":
                index = rng.randrange(atlas_size)
                start = t()
                r = await client.click_map(index)
                tally.add("map", start, r.seconds)
                check(tally, "map", r.ok and r.has_text(f"test #{index} "), r.exceptions + r.error_alerts)
                z = parse_code(r.texts, dim) or z  # the clicked digit's code: the next release moves one slider from it
            elif action == "draw":
                start = t()
                r = await client.stroke(drawing_data_url(rng))
                tally.add("draw", start, r.seconds)
                check(tally, "draw", r.ok and "drawing_posterior" in r.keys, r.exceptions + r.error_alerts)
                z = parse_code(r.texts, dim) or z
            else:
                data = photo_bytes(rng, photo_side)
                start = t()
                r = await client.upload(f"digit-{rng.randrange(10**6)}.jpg", data, "image/jpeg")
                tally.add("upload", start, r.seconds)
                check(tally, "upload", r.ok and "upload_posterior" in r.keys, r.exceptions + r.error_alerts)
    except (SessionError, OSError, asyncio.TimeoutError) as e:
        tally.error(f"session: {type(e).__name__}: {e}")
    except Exception as e:  # noqa: BLE001 - one learner's failure is a figure, not the end of the class
        tally.error(f"learner crashed: {type(e).__name__}: {e}")
    finally:
        await client.close()


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


# ---- the server's memory and the load generator's own health --------------------------------

def _group_stats(pgid: int) -> list[tuple[int, list[str]]]:
    """(pid, fields of /proc/pid/stat after the command name) of every process in process group `pgid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                found.append((int(entry), fields))
        except (OSError, ValueError, IndexError):
            continue  # the process ended between the listing and the read
    return found


def group_rss_mb(pgid: int) -> float:
    """Resident memory (MB, decimal) of every process in process group `pgid` (the server and any child)."""
    total = 0
    for pid, _ in _group_stats(pgid):
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next((int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:")), 0)
        except OSError:
            continue
    return total / 1e6


def group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the processes in group `pgid`."""
    ticks = sum(int(fields[11]) + int(fields[12]) for _, fields in _group_stats(pgid))  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


class RssSampler(threading.Thread):
    """Samples the server group's RSS every `every` seconds until stopped; keeps the peak."""

    def __init__(self, pgid: int, every: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pgid, self.every, self.peak = pgid, every, 0.0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, group_rss_mb(self.pgid))
            self._stop_event.wait(self.every)

    def stop(self) -> float:
        self._stop_event.set()
        self.join()
        return self.peak


async def loop_lag(stop_at: float, every: float = 0.1) -> float:
    """Worst oversleep (s) of a 0.1-s sleep on this event loop until `stop_at`: the load generator's own delay."""
    worst = 0.0
    while time.perf_counter() < stop_at:
        t0 = time.perf_counter()
        await asyncio.sleep(every)
        worst = max(worst, time.perf_counter() - t0 - every)
    return worst


# ---- one class ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClassConfig:
    learners: int
    duration_s: float = 30.0
    ramp_s: float = 10.0
    browsers: int = 1
    settle_s: float = 10.0
    pace: Pace = Pace()
    seed: int = 0
    photo_side: int = 0
    timeout_s: float = 60.0


async def _class(url: str, cfg: ClassConfig, tally: Tally) -> tuple[float, float]:
    """Run the learners; returns (steady_after offset s, loop lag max s)."""
    rng = random.Random(cfg.seed)
    # Page loads and uploads make their HTTP requests in threads: enough of them that none waits for another.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=cfg.learners + 4))
    browsers = min(cfg.browsers, cfg.learners)
    delays = [cfg.ramp_s * i / max(1, cfg.learners) for i in range(cfg.learners)]
    rng.shuffle(delays)
    t_zero = time.perf_counter()
    stop_at = t_zero + cfg.ramp_s + cfg.duration_s
    tasks = [asyncio.create_task(ws_learner(url, delays[i], stop_at, t_zero, cfg.pace, random.Random(rng.random()), tally,
                                            cfg.photo_side, cfg.timeout_s, grace=max(30.0, cfg.duration_s)))
             for i in range(browsers, cfg.learners)]
    lag = asyncio.create_task(loop_lag(stop_at))
    browser_task = None
    if browsers:
        browser_task = asyncio.create_task(asyncio.to_thread(
            browser_learners, url, browsers, sorted(delays[:browsers]), stop_at, t_zero, cfg.pace,
            random.Random(rng.random()), tally, cfg.timeout_s))
    await asyncio.gather(*tasks)
    if browser_task is not None:
        try:
            await browser_task
        except Exception as e:  # noqa: BLE001 - playwright missing or the browser died: a reported error
            tally.error(f"browsers: {type(e).__name__}: {e}")
    opens = [s + d for s, d in tally.samples.get("open", [])]
    steady_after = max(opens, default=cfg.ramp_s)
    return steady_after, await lag


async def _warm_up(url: str, timeout: float) -> None:
    client = StreamlitClient(url, timeout=timeout)
    try:
        await client.open()
        await client.ready()
    finally:
        await client.close()


def run_class(models: Path, cfg: ClassConfig, log_path: Path) -> ClassResult:
    """Start the app on `models`, warm it up, play one class of `cfg.learners` and measure it."""
    app = AppServer(models, log_path).start()
    try:
        asyncio.run(_warm_up(app.url, cfg.timeout_s))
        pgid = app.proc.pid  # AppServer starts the server in its own session: its pid is the group id
        rss_idle = group_rss_mb(pgid)
        sampler = RssSampler(pgid)
        sampler.start()
        tally = Tally()
        load_before, cpu_before, t_before = os.getloadavg(), group_cpu_s(pgid), time.perf_counter()
        steady_after, lag = asyncio.run(_class(app.url, cfg, tally))
        load_after, cpu_s, wall_s = os.getloadavg(), group_cpu_s(pgid) - cpu_before, time.perf_counter() - t_before
        time.sleep(cfg.settle_s)  # the sessions close; memory the server gives back shows here
        peak = sampler.stop()
        rss_after = group_rss_mb(pgid)
    finally:
        app.stop()
    return ClassResult(cfg.learners, min(cfg.browsers, cfg.learners), cfg.duration_s, tally, steady_after,
                       rss_idle, max(peak, rss_after), rss_after, lag * 1000, load_before, load_after, cpu_s, wall_s)


# ---- the report -----------------------------------------------------------------------------

HEADER = ("N", "brw", "releases", "rel p50", "rel p95", "upl", "upl p95", "draw p95", "map p95", "open p95",
          "brw rel p50", "RSS idle", "RSS peak", "RSS after", "errors", "CPU s/learner-min", "lag max", "load", "holds")


def row(r: ClassResult) -> tuple[str, ...]:
    ms = lambda v: "-" if math.isnan(v) else f"{v:.0f}"  # noqa: E731
    return (str(r.learners), str(r.browsers), str(r.tally.count("release")), ms(r.p("release", 0.5, True)),
            ms(r.p("release", 0.95, True)), str(r.tally.count("upload")), ms(r.p("upload", 0.95, True)),
            ms(r.p("draw", 0.95, True)), ms(r.p("map", 0.95, True)), ms(r.p("open", 0.95)),
            ms(r.p("browser_release", 0.5, True)), f"{r.rss_idle_mb:.0f}", f"{r.rss_peak_mb:.0f}",
            f"{r.rss_after_mb:.0f}", str(len(r.tally.errors)), f"{r.cpu_per_learner_min:.2f}", f"{r.loop_lag_max_ms:.0f}",
            f"{r.load_before[0]:.1f}->{r.load_after[0]:.1f}", "yes" if r.holds else "NO")


def markdown_table(results: Sequence[ClassResult]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row(r)) + " |" for r in results]
    return "\n".join(lines)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.class_load", description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, default=REPO_ROOT / "models", help="models folder (default: the shipped models)")
    ap.add_argument("--learners", default="10,30,60,100", help="class sizes, comma-separated (default 10,30,60,100)")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of work after the ramp, per size (default 30)")
    ap.add_argument("--ramp", type=float, default=10.0, help="seconds over which the learners arrive (default 10)")
    ap.add_argument("--browsers", type=int, default=1, help="learners that are real Chromium pages (default 1; 0: none)")
    ap.add_argument("--settle", type=float, default=10.0, help="seconds after the class before 'RSS after' (default 10)")
    ap.add_argument("--photo-side", type=int, default=0,
                    help="scale uploaded photos to this long side in px, e.g. 4032 for a phone's (default 0: 360 px as in tests/assets)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        args.sizes = [int(v) for v in args.learners.split(",") if v.strip()]
    except ValueError:
        ap.error("--learners takes comma-separated integers")
    if not args.sizes or min(args.sizes) < 1 or args.duration <= 0 or args.ramp < 0 or args.browsers < 0:
        ap.error("--learners must be >= 1, --duration > 0, --ramp and --browsers >= 0")
    if max(args.sizes) > 200:
        ap.error("at most 200 learners: this is a benchmark on one machine, not a load test of the internet")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    if args.browsers:
        from bench.harness import chromium_path
        if chromium_path() is None:
            print("# no chromium: running with --browsers 0", flush=True)
            args.browsers = 0
    uptime = os.popen("uptime").read().strip()  # noqa: S605,S607 - a fixed command, for the record
    print(f"# {os.cpu_count()} CPUs; uptime before: {uptime}", flush=True)
    print(f"# models {args.models}; duration {args.duration:g} s after a {args.ramp:g} s ramp; browsers {args.browsers}; "
          f"photos {args.photo_side or 'as shipped'}; pace {Pace()}", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="class_load_") as tmp:
        for n in args.sizes:
            cfg = ClassConfig(n, args.duration, args.ramp, args.browsers, args.settle, seed=args.seed,
                              photo_side=args.photo_side)
            r = run_class(args.models, cfg, Path(tmp) / f"server-{n}.log")
            results.append(r)
            print(" ".join(f"{h.replace(' ', '_')}={v}" for h, v in zip(HEADER, row(r))), flush=True)
            print("#   " + "; ".join(f"{kind} n={r.tally.count(kind)} p50={r.p(kind, 0.5):.0f} p95={r.p(kind, 0.95):.0f} ms"
                                    for kind in ("open", "release", "map", "draw", "upload", "browser_open", "browser_release")),
                  flush=True)
            for e in sorted(set(r.tally.errors))[:5]:
                print(f"#   error x{r.tally.errors.count(e)}: {e}", flush=True)
    print(f"# uptime after: {os.popen('uptime').read().strip()}")  # noqa: S605,S607
    print(markdown_table(results))
    held = [r.learners for r in results if r.holds]
    print(f"largest class that holds (steady release p95 <= {TARGET_RELEASE_P95_MS:.0f} ms, RSS peak <= "
          f"{TARGET_RSS_MB / 1000:.1f} GB, no errors): {max(held) if held else 'none of ' + str(args.sizes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
