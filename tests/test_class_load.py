"""The class benchmark (bench.class_load, bench.learners) plays a tiny class on the real server and measures it.

Two websocket learners on the tiny test model for a few seconds, at a fast pace: every action a
learner knows (slider releases, a map click, a stroke, an upload) must reach the real app and come
back as the page that shows it, with no error. No timing is asserted: the figures are the
benchmark's to print.
"""

from __future__ import annotations

import os
import sys
import threading

import pytest

from bench import class_load, learners
from bench.class_load import ClassConfig
from bench.learners import Pace, Tally, code_text, parse_code

FAST = Pace(think=(0.1, 0.3), release_gap=(0.05, 0.15), burst=(2, 3))


@pytest.mark.server
def test_a_tiny_class_measures_releases_and_uploads(tiny_models_dir, tmp_path):
    # Two app processes, one learner each (as behind a sticky load balancer): the multi-process path too.
    cfg = ClassConfig(learners=2, duration_s=4.0, ramp_s=0.5, browsers=0, settle_s=0.5, pace=FAST, timeout_s=60.0,
                      servers=2)
    r = class_load.run_class(tiny_models_dir, cfg, tmp_path / "server.log")
    assert r.tally.errors == []
    for kind in ("open", "release", "map", "draw", "upload"):
        assert r.tally.count(kind) > 0, f"no {kind} measured"
    assert r.tally.count("open") == 2
    assert r.rss_idle_mb > 0 and r.rss_peak_mb >= r.rss_idle_mb
    assert "| 2 | 2 | 0 |" in class_load.markdown_table([r])


def test_the_code_line_is_read_back_as_written():
    z = [0.05, -1.2, 0.0, 2.5, -0.0, 0.3, -2.45, 1.0]
    line = f"Code from **sliders**: z = [{code_text(z)}] · nearest test digit: a 3 (#12)"
    assert code_text(z).startswith("+0.05, -1.20, +0.00, +2.50, +0.00")
    assert parse_code(["other", line], 8) == [0.05, -1.2, 0.0, 2.5, 0.0, 0.3, -2.45, 1.0]
    assert parse_code([line], 4) is None


def test_drawings_and_photos_differ_each_time():
    import random

    rng = random.Random(1)
    assert learners.drawing_data_url(rng) != learners.drawing_data_url(rng)
    assert learners.photo_bytes(rng) != learners.photo_bytes(rng)
    assert learners.drawing_data_url(rng).startswith("data:image/png;base64,")


@pytest.mark.browser
def test_a_chromium_learner_drags_and_measures_its_releases(tiny_models_dir, tmp_path):
    from bench.harness import chromium_path

    if chromium_path() is None:
        pytest.skip("no chromium")
    pytest.importorskip("playwright.sync_api")
    cfg = ClassConfig(learners=1, duration_s=1.0, ramp_s=0.0, browsers=1, settle_s=0.5, pace=FAST, timeout_s=90.0)
    r = class_load.run_class(tiny_models_dir, cfg, tmp_path / "server.log")
    assert r.tally.errors == []
    assert r.tally.count("browser_open") == 1 and r.tally.count("browser_release") > 0


def test_a_learners_cost_follows_its_pace():
    from bench.action_cost import ActionCosts

    costs = ActionCosts({"open": 300.0, "release": 100.0, "map": 200.0, "draw": 300.0, "upload": 400.0})
    calm = Pace(think=(8.0, 12.0))
    # default pace: cycle 5.5 + 0.6*3*2 = 9.1 s; per cycle 0.6*4*100 + 0.15*200 + 0.15*300 + 0.1*400 = 355 ms
    assert costs.learner_cpu_s_per_min(Pace()) == pytest.approx(60 / 9.1 * 0.355)
    assert costs.learners_per_core(calm) > costs.learners_per_core(Pace())


@pytest.mark.server
def test_action_costs_are_measured_for_every_action(tiny_models_dir, tmp_path):
    from bench import action_cost

    costs = action_cost.measure(tiny_models_dir, tmp_path / "server.log", repeats=1)
    assert set(costs.ms) == set(action_cost.KINDS)
    assert all(v >= 0 for v in costs.ms.values()) and costs.ms["open"] > 0


@pytest.mark.skipif(sys.platform != "linux", reason="a thread's own CPU priority is Linux's")
def test_the_learners_play_below_the_servers_priority_and_the_caller_keeps_its_own(monkeypatch):
    seen = {}

    async def record_priority(urls, cfg, tally):  # noqa: ANN001, ANN202 - stands in for the class itself
        seen["nice"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        return 0.0, 0.0

    monkeypatch.setattr(class_load, "_class", record_priority)
    base = os.getpriority(os.PRIO_PROCESS, 0)
    assert class_load._run_learners([], ClassConfig(1, learner_nice=5), Tally()) == (0.0, 0.0)
    assert seen["nice"] == min(19, base + 5)
    assert os.getpriority(os.PRIO_PROCESS, 0) == base  # servers started after this keep the normal priority
