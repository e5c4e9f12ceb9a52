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
import math
import os
import random
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from bench import action_cost
from bench.harness import AppServer
from bench.learners import Pace, Tally, WsLearner, browser_learners, quantile
from bench.server_stats import RssSampler, group_cpu_s, group_rss_mb
from bench.st_client import StreamlitClient
from common.paths import REPO_ROOT

TARGET_RELEASE_P95_MS = 500.0
TARGET_RSS_MB = 1500.0  # 1.5 GB, decimal


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
    servers: int = 1  # app processes the learners were spread over (RSS and CPU are their sums)

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
    servers: int = 1
    # The learners' CPU priority below the server's (Linux nice). In a class each learner's browser runs
    # on their own device; here the load generator and the server share two cores, and at equal priority
    # the generator's CPU delays the server's replies (docs/hosting.md shows both). 0: equal priority.
    learner_nice: int = 10


async def _class(urls: list[str], cfg: ClassConfig, tally: Tally) -> tuple[float, float]:
    """Run the learners; returns (steady_after offset s, loop lag max s)."""
    rng = random.Random(cfg.seed)
    # Page loads and uploads make their HTTP requests in threads: enough of them that none waits for another.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=cfg.learners + 4))
    browsers = min(cfg.browsers, cfg.learners)
    delays = [cfg.ramp_s * i / max(1, cfg.learners) for i in range(cfg.learners)]
    rng.shuffle(delays)
    t_zero = time.perf_counter()
    stop_at = t_zero + cfg.ramp_s + cfg.duration_s
    grace = max(30.0, cfg.duration_s)
    # With several servers each learner stays on one (what a load balancer's sticky sessions do).
    learners = [WsLearner(urls[i % len(urls)], t_zero, stop_at, grace, cfg.pace, random.Random(rng.random()), tally,
                          cfg.photo_side, cfg.timeout_s) for i in range(browsers, cfg.learners)]
    tasks = [asyncio.create_task(learner.run(delay)) for learner, delay in zip(learners, delays[browsers:])]
    lag = asyncio.create_task(loop_lag(stop_at))
    browser_task = None
    if browsers:
        browser_task = asyncio.create_task(asyncio.to_thread(
            browser_learners, urls[0], browsers, sorted(delays[:browsers]), stop_at, t_zero, cfg.pace,
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


def _run_learners(urls: list[str], cfg: ClassConfig, tally: Tally) -> tuple[float, float]:
    """Play the class (_class) in a thread of its own at `cfg.learner_nice` above the server's nice value.
    On Linux a thread's priority is its own, and inherited by the threads and processes it starts (the
    HTTP workers, Chromium); the servers, started from the main thread, keep theirs."""
    out: dict[str, Any] = {}

    def play() -> None:
        try:
            if cfg.learner_nice and sys.platform == "linux":
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + cfg.learner_nice)
            out["result"] = asyncio.run(_class(urls, cfg, tally))
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            out["error"] = e

    thread = threading.Thread(target=play, name="learners")
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["result"]


def run_class(models: Path, cfg: ClassConfig, log_path: Path) -> ClassResult:
    """Start `cfg.servers` app processes on `models`, warm each up, play one class of `cfg.learners`
    (each learner on one process, as behind a load balancer with sticky sessions) and measure it."""
    apps: list[AppServer] = []
    try:
        for k in range(cfg.servers):
            apps.append(AppServer(models, log_path.with_name(f"{log_path.stem}-{k}{log_path.suffix}")).start())
            asyncio.run(_warm_up(apps[-1].url, cfg.timeout_s))
        pgids = [app.proc.pid for app in apps]  # AppServer starts each server in its own session: pid = group id
        rss_idle = sum(map(group_rss_mb, pgids))
        sampler = RssSampler(pgids)
        sampler.start()
        tally = Tally()
        cpu = lambda: sum(map(group_cpu_s, pgids))  # noqa: E731
        load_before, cpu_before, t_before = os.getloadavg(), cpu(), time.perf_counter()
        steady_after, lag = _run_learners([app.url for app in apps], cfg, tally)
        load_after, cpu_s, wall_s = os.getloadavg(), cpu() - cpu_before, time.perf_counter() - t_before
        time.sleep(cfg.settle_s)  # the sessions close; memory the server gives back shows here
        peak = sampler.stop()
        rss_after = sum(map(group_rss_mb, pgids))
    finally:
        for app in apps:
            app.stop()
    return ClassResult(cfg.learners, min(cfg.browsers, cfg.learners), cfg.duration_s, tally, steady_after,
                       rss_idle, max(peak, rss_after), rss_after, lag * 1000, load_before, load_after, cpu_s, wall_s,
                       cfg.servers)


# ---- the report -----------------------------------------------------------------------------

HEADER = ("N", "srv", "brw", "releases", "rel p50", "rel p95", "upl", "upl p95", "draw p95", "map p95", "open p95",
          "brw rel p50", "RSS idle", "RSS peak", "RSS after", "errors", "CPU s/learner-min", "lag max", "load", "holds")


def row(r: ClassResult) -> tuple[str, ...]:
    ms = lambda v: "-" if math.isnan(v) else f"{v:.0f}"  # noqa: E731
    return (str(r.learners), str(r.servers), str(r.browsers), str(r.tally.count("release")),
            ms(r.p("release", 0.5, True)), ms(r.p("release", 0.95, True)), str(r.tally.count("upload")), ms(r.p("upload", 0.95, True)),
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
    ap.add_argument("--servers", type=int, default=1,
                    help="app processes, each learner staying on one, as behind a sticky load balancer (default 1)")
    ap.add_argument("--learner-nice", type=int, default=10,
                    help="run the learners this much below the server's CPU priority (Linux nice; default 10: "
                         "a class's browsers run on their own devices; 0: equal priority)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        args.sizes = [int(v) for v in args.learners.split(",") if v.strip()]
    except ValueError:
        ap.error("--learners takes comma-separated integers")
    if not args.sizes or min(args.sizes) < 1 or args.duration <= 0 or args.ramp < 0 or args.browsers < 0:
        ap.error("--learners must be >= 1, --duration > 0, --ramp and --browsers >= 0")
    if not 0 <= args.learner_nice <= 19:
        ap.error("--learner-nice takes 0 to 19")
    if not 1 <= args.servers <= 8:
        ap.error("--servers takes 1 to 8 processes")
    if args.duration > 1800 or args.ramp > 600:
        ap.error("--duration is at most 1800 s and --ramp 600 s")
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
    print(f"# models {args.models}; {args.servers} app process(es); duration {args.duration:g} s after a "
          f"{args.ramp:g} s ramp; browsers {args.browsers}; photos {args.photo_side or 'as shipped'}; learners at nice "
          f"+{args.learner_nice} to the server; pace {Pace()}", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="class_load_") as tmp:
        costs = action_cost.measure(args.models, Path(tmp) / "server-cost.log")
        pace = Pace()
        print("# server CPU per action, one learner alone (median of 3): "
              + ", ".join(f"{k} {v:.0f} ms" for k, v in costs.ms.items()), flush=True)
        print(f"# at the default pace a working learner costs ~{costs.learner_cpu_s_per_min(pace):.2f} CPU s/min: one server "
              f"process (about one core) is full at ~{costs.learners_per_core(pace):.0f} working learners", flush=True)
        for n in args.sizes:
            cfg = ClassConfig(n, args.duration, args.ramp, args.browsers, args.settle, seed=args.seed,
                              photo_side=args.photo_side, servers=args.servers, learner_nice=args.learner_nice)
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
