"""bench (the app benchmarks) on the tiny model: every directly timed figure is a positive finite number and
`main --quick` prints well-formed `name=value (target <= T) PASS|MISS` lines. No timing assertions."""

from __future__ import annotations

import math
import re

import numpy as np
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


def spy(monkeypatch, module, name: str) -> list[tuple[tuple, object]]:  # noqa: ANN001
    """Replaces module.name by a wrapper that records (args, result) of each call; returns the record."""
    real, calls = getattr(module, name), []

    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        result = real(*args, **kwargs)
        calls.append((args, result))
        return result

    monkeypatch.setattr(module, name, wrapper)
    return calls


def test_fragment_body_time(em, monkeypatch):
    verdicts = spy(monkeypatch, reruns.studio, "plausibility")
    urls = spy(monkeypatch, reruns.links, "encode")
    assert positive_finite(reruns.fragment_body(em, repeats=3))
    # what was timed: the release's work on 3 different codes after one warm-up, each giving a verdict and a URL
    assert len(verdicts) == len(urls) == 4
    assert len({tuple(np.round(args[0], 6)) for args, _ in verdicts}) == 4
    assert all(r.verdict for _, r in verdicts) and all(r["model"] == em.name for _, r in urls)


@pytest.mark.parametrize("label,filename,mime", uploads.UPLOADS)
def test_upload_direct_time(em, monkeypatch, label, filename, mime):
    analyses = spy(monkeypatch, uploads, "analyse_digit")
    data = (uploads.ASSETS / filename).read_bytes()
    assert positive_finite(uploads.upload_direct(em, data, repeats=2))
    # what was timed: the file prepared into an MNIST-like digit and analysed, once to warm up and twice timed
    assert len(analyses) == 3
    (model, atlas, digit, _), result = analyses[-1]
    assert model is em.model and digit.shape == (28, 28) and digit.max() > 0.5
    assert result.recon.shape == (28, 28) and np.isfinite(result.mu).all()


def test_tsne_place_time(em, monkeypatch):
    placed = spy(monkeypatch, reruns.projection, "place")
    assert positive_finite(reruns.tsne_place(em, n=20))
    # what was timed: 20 different codes placed on the t-SNE map (plus one warm-up), each inside the map's extent
    tsne = em.atlas.tsne
    assert len(placed) == 21 and all(args[2] == "t-SNE" for args, _ in placed)
    xy = np.array([np.asarray(r, float).ravel()[:2] for _, r in placed])
    assert len({tuple(p) for p in xy.round(6)}) == 21
    assert (xy >= tsne.min(0) - 1e-6).all() and (xy <= tsne.max(0) + 1e-6).all()


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


@pytest.mark.slow
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
