"""bench (the app benchmarks) on the tiny model: every directly timed figure is a positive finite number and
`main --quick` prints well-formed `name=value (target <= T) PASS|MISS` lines. No timing assertions."""

from __future__ import annotations

import math
import re

import pytest

from bench import __main__ as bench_main
from bench import reruns, timing, uploads
from explorer.bundle import MODELS_DIR_ENV

LINE = re.compile(r"^(?P<name>[a-z0-9_]+)=(?P<value>\d+(\.\d+)?) \(target [<>]= (?P<target>\d+(\.\d+)?)\) (PASS|MISS)$")


@pytest.fixture(scope="module")
def em(tiny_models_dir):
    return timing.load_first_model(tiny_models_dir)


def positive_finite(x: float) -> bool:
    return isinstance(x, float) and math.isfinite(x) and x > 0


def test_fragment_body_time(em):
    assert positive_finite(reruns.fragment_body(em, repeats=3))


@pytest.mark.parametrize("label,filename,mime", uploads.UPLOADS)
def test_upload_direct_time(em, label, filename, mime):
    data = (uploads.ASSETS / filename).read_bytes()
    assert positive_finite(uploads.upload_direct(em, data, repeats=2))


def test_tsne_place_time(em):
    assert positive_finite(reruns.tsne_place(em, n=20))


def test_fragment_rerun_runs_the_apps_real_fragment(tiny_models_dir, monkeypatch):
    monkeypatch.setenv(MODELS_DIR_ENV, str(tiny_models_dir))
    at = reruns.apptest(function=reruns._fragment_only, projection_name="PCA")
    reruns.run_clean(at)
    assert any(c.value.startswith("Code from") for c in at.caption)
    assert not at.get("plotly_chart")  # only the fragment: the 10k-point map is not part of it
    assert positive_finite(reruns.warm_release_rerun(at, repeats=2))
    assert at.session_state["latent_code"].source == "sliders"  # the reruns did take releases


def test_figure_line_format():
    assert timing.Figure("cold_start_apptest_s", 2.414, 3.0).line() == "cold_start_apptest_s=2.41 (target <= 3) PASS"
    assert timing.Figure("tsne_place_ms", 51.0, 50.0).line() == "tsne_place_ms=51.0 (target <= 50) MISS"
    assert timing.Figure("drag_decodes_per_s", 59.0, 60.0, at_least=True).line() == "drag_decodes_per_s=59.0 (target >= 60) MISS"
    assert timing.Figure("drag_decodes_per_s", 61.0, 60.0, at_least=True).line() == "drag_decodes_per_s=61.0 (target >= 60) PASS"


def test_main_quick_prints_every_in_process_figure(tiny_models_dir, monkeypatch, capsys):
    monkeypatch.setenv(MODELS_DIR_ENV, str(tiny_models_dir))  # main sets it too; restored afterwards
    assert bench_main.main(["--models", str(tiny_models_dir), "--repeats", "2", "--quick"]) == 0
    out = [line for line in capsys.readouterr().out.splitlines() if line and not line.startswith("#")]
    names = []
    for line in out:
        m = LINE.match(line)
        assert m, f"malformed line: {line!r}"
        assert math.isfinite(float(m["value"]))
        names.append(m["name"])
    assert names == ["release_rerun_apptest_ms", "fragment_rerun_apptest_ms", "fragment_body_ms",
                     "upload_direct_photo_ms", "upload_apptest_photo_ms",
                     "upload_direct_clean_ms", "upload_apptest_clean_ms", "tsne_place_ms"]
