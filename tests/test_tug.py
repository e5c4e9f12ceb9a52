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
    assert list(fig.data[0].customdata) == ["x", "y"] and [t.name for t in fig.data] == ["beta sweep", "default", "selected"]
