"""explorer.tug and explorer.tug_figures on made-up records: the story states what the numbers say
(warm-up, a rise after it, a later stage, collapsed units), the sweep's points come from the atlas,
and the map over training uses one fixed projection for every frame."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from common.dynamics_format import Dynamics, validate_dynamics
from common.records import Stage
from explorer import bundle, tug, tug_figures


def record(test_kl, test_recon, final_kl_per_dim, stage=None, snapshots=(0, 1, 2), d: int = 4, n: int = 40) -> Dynamics:
    """A valid Dynamics with the given test curves over E epochs; other fields are plausible fillers."""
    e = len(test_kl)
    kl_dim = np.tile(np.asarray(final_kl_per_dim, np.float32), (e, 1))
    rng = np.random.default_rng(0)
    s, m = len(snapshots), n // 5
    dyn = Dynamics(
        epoch=np.arange(1, e + 1, dtype=np.int32), stage=np.asarray(stage if stage is not None else [0] * e, np.int32),
        lr=np.full(e, 1e-3, np.float32), train_recon=np.asarray(test_recon, np.float32) - 1,
        train_kl=np.asarray(test_kl, np.float32), test_recon=np.asarray(test_recon, np.float32),
        test_kl=np.asarray(test_kl, np.float32), kl_per_dim=kl_dim,
        sigma_mean=np.where(kl_dim < 0.05, 1.0, 0.2).astype(np.float32),
        mu_variance=np.where(kl_dim < 0.05, 0.0, 1.0).astype(np.float32),
        active_units=np.full(e, int((np.asarray(final_kl_per_dim) >= 0.05).sum()), np.int32),
        snapshot_epoch=np.asarray(snapshots, np.int32), snapshot_stage=np.zeros(s, np.int32),
        code_index=np.arange(0, n, 5, dtype=np.int32), snapshot_mu=rng.normal(size=(s, m, d)).astype(np.float32),
        prior_z=rng.normal(size=(16, d)).astype(np.float32), snapshot_prior=np.zeros((s, 16, 784), np.uint8),
        recon_index=np.arange(8, dtype=np.int32), snapshot_recon=np.zeros((s, 8, 784), np.uint8), test_size=n)
    validate_dynamics(dyn)
    return dyn


def test_a_warm_up_story_says_kl_started_high_and_rose_again():
    kl = [60, 30, 20, 18, 19, 21]
    dyn = record(kl, [130, 110, 104, 101, 100, 99], [5, 5, 0.01, 5])
    story = " ".join(tug.training_story(dyn, [Stage("ELBO")], warmup_epochs=10))
    assert "fell from 130.0 nats after epoch 1 to 99.0" in story and "from 60.0 to 21.0 nats" in story
    assert "10-epoch warm-up" in story and "down to 18.0 nats at epoch 4" in story
    assert "rose again by 3.0 nats" in story
    assert "1 of 4 units collapsed to the prior (z2: the posterior mean no longer depends on the digit, sigma 1.00-1.00)" in story


def test_a_later_stage_and_no_collapse_are_told():
    dyn = record([10, 12, 14, 15, 16], [110, 105, 102, 100, 99], [3, 3, 3, 3], stage=[0, 0, 0, 1, 1])
    story = " ".join(tug.training_story(dyn, [Stage("ELBO"), Stage("IWAE bound (k=5)")]))
    assert "KL rose, not fell" in story
    assert "The IWAE bound (k=5) stage (epochs 4-5) moved KL by +2.0 and reconstruction by -3.0 nats" in story
    assert "No unit collapsed: all 4 stay active, carrying 3.00-3.0 nats" in story and "reconstruction won every unit" in story
    weak = record([10, 12], [110, 105], [3, 0.1, 3, 3])
    weak = dataclasses.replace(weak, mu_variance=np.ones_like(weak.mu_variance))  # active, but only 0.1 nats
    assert "z1 carries only 0.10 nats and is close to collapse" in tug.training_story(weak)[-1]
    assert tug.stage_starts(dyn) == [(1, 4)]


def test_the_map_over_training_draws_every_frame_on_the_final_models_pca_axes(tiny_models_dir):
    m = bundle.load_explorer_model(tiny_models_dir / "default.pt")
    atlas = m.atlas
    dyn = record([5, 4, 3], [100, 99, 98], [1] * atlas.latent_dim, d=atlas.latent_dim, n=atlas.size)
    last_codes = atlas.mu[dyn.code_index]  # pretend the last snapshot is the atlas's model
    dyn = dataclasses.replace(dyn, snapshot_mu=np.stack([dyn.snapshot_mu[0], dyn.snapshot_mu[1], last_codes]))
    fig = tug_figures.training_map_figure(atlas, dyn)
    assert [f.name for f in fig.frames] == ["0", "1", "2"]
    last = fig.frames[-1].data
    labels = atlas.labels[dyn.code_index]
    for digit in range(10):
        want = atlas.pca[dyn.code_index][labels == digit]  # the atlas's own PCA coordinates
        np.testing.assert_allclose(np.c_[last[digit].x, last[digit].y], want, atol=1e-4)
    assert last[10].source.startswith("data:image/png;base64,") and last[11].source.startswith("data:image/png;base64,")


def test_a_sweep_point_reads_the_atlas(tiny_models_dir):
    atlas = bundle.load_explorer_model(tiny_models_dir / "default.pt").atlas
    p = tug.sweep_point("x", atlas)
    assert p is not None and p.kl == pytest.approx(atlas.metrics.kl) and p.recon == pytest.approx(atlas.metrics.recon)
    assert p.active_units == int((atlas.mu_variance > 0.01).sum()) and p.beta == tug.beta_of(atlas)
    assert p.mean_sigma == pytest.approx(float(np.exp(0.5 * atlas.logvar).mean()))
    fig = tug_figures.rate_distortion_figure([p, tug.SweepPoint(**{**p.__dict__, "name": "y", "beta": 2.0})],
                                             [("default", p)], selected="y")
    assert list(fig.data[0].customdata) == ["x", "y"] and [t.name for t in fig.data] == ["beta sweep", "default, β=1", "selected"]


def point(beta: float, kl: float, recon: float, active: int, sigma: float, norm: float, d: int = 8) -> tug.SweepPoint:
    return tug.SweepPoint(name=f"beta/beta-{beta:g}", beta=beta, kl=kl, recon=recon, nll=None, iw_samples=None,
                          active_units=active, latent_dim=d, mean_sigma=sigma, median_norm=norm)


def test_the_sweep_story_says_collapse_only_when_units_collapse():
    every = [point(0.25, 23.3, 93.3, 8, 0.08, 3.52), point(8, 4.7, 136.4, 8, 0.60, 2.18)]
    story = " ".join(tug.sweep_story(every))
    assert "collapse to the prior" not in story and "No unit collapses in this sweep: all 8 of 8 stay active at every β" in story
    assert "KL falls from 23.3 to 4.7 nats" in story and "rises from 93.3 to 136.4 nats" in story
    assert "mean σ 0.08 at β = 0.25, 0.60 at β = 8" in story and "move in toward the prior's centre" in story
    assert "3.52 → 2.18" in story
    some = [point(0.5, 20, 90, 8, 0.1, 3.0), point(4, 8, 110, 6, 0.4, 2.5), point(16, 2, 150, 3, 0.8, 1.5)]
    story = " ".join(tug.sweep_story(some))
    assert "Units collapse to the prior as β grows: 6 of 8 active at β = 4, 3 of 8 at β = 16" in story
    assert "No unit collapses" not in story


def test_the_sweeps_maps_share_fixed_labelled_axes(tiny_models_dir):
    atlas = bundle.load_explorer_model(tiny_models_dir / "default.pt").atlas
    wide = dataclasses.replace(atlas, pca=atlas.pca * 3)  # a small beta: codes spread out
    r = tug.shared_range([atlas.pca, wide.pca])
    assert r[0] == -r[1] and r[1] >= np.abs(wide.pca).max() * 0.9 and r[1] * 2 == round(r[1] * 2)
    figs = [tug_figures.sweep_map_figure(a, beta, r) for a, beta in ((wide, 0.25), (atlas, 8.0))]
    for fig in figs:
        assert tuple(fig.layout.xaxis.range) == r and tuple(fig.layout.yaxis.range) == r
        assert fig.layout.xaxis.showticklabels and fig.layout.yaxis.showticklabels
        assert fig.layout.xaxis.constrain == "domain" and fig.layout.yaxis.constrain == "domain"  # ranges kept
        assert fig.data[-1].name == "z = 0"
    assert "β = 0.25" in figs[0].layout.title.text and "β = 8" in figs[1].layout.title.text


def test_the_rate_distortion_plot_keeps_labels_inside_and_tells_shipped_models_apart():
    sweep = [point(b, kl, rec, 8, 0.1, 2.0) for b, kl, rec in ((0.25, 23.3, 93.3), (1, 16.0, 97.3), (8, 4.7, 136.4))]
    default, seed = point(1, 16.4, 82.4, 8, 0.15, 2.8), point(1, 16.3, 95.4, 8, 0.14, 2.9)
    fig = tug_figures.rate_distortion_figure(sweep, [("default (shipped)", default), ("seed (shipped)", seed)])
    trace = fig.data[0]
    assert list(trace.text) == ["β=0.25", "β=1", "β=8"]
    assert trace.textposition[0] == "top left" and "right" not in "".join(trace.textposition)  # β=0.25 is right-most
    assert trace.cliponaxis is False
    x, y = fig.layout.xaxis.range, fig.layout.yaxis.range
    assert x[0] < 4.7 and x[1] > 23.3 and y[0] < 82.4 and y[1] > 136.4  # every point and star inside
    marks = fig.data[1:3]
    assert marks[0].marker.symbol != marks[1].marker.symbol and marks[0].marker.color != marks[1].marker.color
    assert all(m.marker.symbol.endswith("-open") for m in marks)  # a sweep point under a symbol stays visible
    assert [m.name for m in marks] == ["default (shipped), β=1", "seed (shipped), β=1"]
    note = tug.marked_note([("default", default), ("seed", seed)], sweep)
    assert "default 14.9 nats below the sweep's β = 1; seed 1.9 nats below the sweep's β = 1" in note
    assert tug.marked_note([("odd", point(3, 1, 1, 8, 0.1, 1))], sweep) == ""


def test_training_curves_use_a_linear_epoch_axis_ending_at_the_last_epoch_with_the_stage_shaded():
    e = 290
    stage = [0] * 250 + [1] * 40
    dyn = record(np.linspace(30, 16, e), np.linspace(140, 82, e), [2] * 4, stage=stage)
    for fig in (tug_figures.curves_figure(dyn, ["ELBO", "IWAE bound (k=5)"]), tug_figures.per_unit_figure(dyn, ["ELBO", "IWAE"])):
        for axis in (fig.layout.xaxis, fig.layout.xaxis2):
            assert axis.type == "linear" and axis.range[1] == pytest.approx(290.5) and axis.range[0] == 0
        rects = [s for s in fig.layout.shapes if s.type == "rect"]
        assert len(rects) == 2 and all(s.x1 - s.x0 == pytest.approx(40) for s in rects)
        note = next(a for a in fig.layout.annotations if "epochs 251-290" in a.text)
        titles = [a for a in fig.layout.annotations if a.text.startswith(("reconstruction", "KL", "mean"))]
        assert note.yanchor == "top" and note.y < 1 and all(t.y >= 1 for t in titles)  # inside the plot, under the titles
