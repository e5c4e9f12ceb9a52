"""The shipped beta sweep (models/beta/): what its recipe trains, small enough to ship, and the
science it exists to show. Read-only: every file is opened, none is written."""

from __future__ import annotations

import numpy as np
import pytest

from common.atlas_format import load_atlas
from common.paths import REPO_ROOT, atlas_path_for
from explorer import bundle, tug
from tests.test_recipes import NOT_TRAINING
from training import recipes
from training.checkpoint import read_checkpoint
from training.config import TrainConfig, parse_args

FOLDER = REPO_ROOT / recipes.BETA_FOLDER
# Nats of slack in the monotone checks: one model's figures carry sampling noise (one z per test
# digit) and training noise of a few tenths of a nat; a real trend across a factor 2 in beta is larger.
TOLERANCE = 0.5


@pytest.fixture(scope="module")
def sweep() -> list[tug.SweepPoint]:
    points = [tug.sweep_point(bundle.checkpoint_name(p, REPO_ROOT / "models"), load_atlas(atlas_path_for(p)))
              for p in sorted(FOLDER.glob("beta-*.pt")) if not p.name.endswith(".last.pt")]
    assert all(p is not None for p in points)
    return tug.sorted_sweep(points)


def test_the_sweep_is_shipped_whole_and_small(sweep):
    assert [p.beta for p in sweep] == [float(b) for b in recipes.BETAS]
    assert len(sweep) >= 5 and sweep[0].beta <= 0.25 and sweep[-1].beta >= 8
    files = [f for f in FOLDER.iterdir() if f.is_file()]
    assert sorted(f.name for f in files) == sorted(n for b in recipes.BETAS for n in (f"beta-{b}.pt", f"beta-{b}.atlas.npz"))
    assert sum(f.stat().st_size for f in files) <= 20 * 2**20


@pytest.mark.parametrize("beta", recipes.BETAS)
def test_each_member_is_what_the_recipe_trains(beta):
    """Every member has the recipe's settings: the sweep differs in beta and nothing else."""
    stage = recipes.beta_stage(beta)
    want = {k: v for k, v in parse_args(recipes.stage_argv(stage, 1, False)).to_dict().items() if k not in NOT_TRAINING}
    ckpt = read_checkpoint(FOLDER / f"beta-{beta}.pt")
    got = {k: v for k, v in TrainConfig.from_dict(ckpt["train_config"]).to_dict().items() if k not in NOT_TRAINING}
    assert got == want and got["beta"] == float(beta)
    atlas = load_atlas(atlas_path_for(FOLDER / f"beta-{beta}.pt"))
    assert atlas.metrics.n == 10000 and atlas.metrics.iw_samples == 200  # metrics over the whole test set
    assert atlas.dynamics is not None and atlas.dynamics.num_epochs == 60 and atlas.test_index is not None


def test_kl_falls_and_reconstruction_error_rises_as_beta_grows(sweep):
    kl, recon = np.array([p.kl for p in sweep]), np.array([p.recon for p in sweep])
    assert (np.diff(kl) < TOLERANCE).all(), kl
    assert (np.diff(recon) > -TOLERANCE).all(), recon
    # and by a lot across the sweep: the two ends are different models, not noise
    assert kl[0] - kl[-1] > 10 and recon[-1] - recon[0] > 20


def test_active_units_do_not_increase_as_beta_grows(sweep):
    active = [p.active_units for p in sweep]
    assert all(b <= a for a, b in zip(active, active[1:])), active
    assert active[0] == sweep[0].latent_dim


def test_the_weakest_unit_gives_way_as_beta_grows():
    """Beta squeezes every unit, the weakest most: at beta = 8 it carries a small fraction of what
    it carries at beta = 0.25 (60 epochs do not collapse it outright: it stays active)."""
    weakest = [float(load_atlas(atlas_path_for(FOLDER / f"beta-{b}.pt")).kl_per_dim.min()) for b in recipes.BETAS]
    assert all(b < a + 0.05 for a, b in zip(weakest, weakest[1:])), weakest
    assert weakest[-1] < 0.1 * weakest[0]


def test_posterior_noise_grows_with_beta(sweep):
    """KL wants noise: the mean posterior sigma rises along the sweep."""
    sigma = np.array([p.mean_sigma for p in sweep])
    assert (np.diff(sigma) > -0.02).all(), sigma
    assert sigma[-1] > 2 * sigma[0]
