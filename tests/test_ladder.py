"""The ladder from autoencoder to VAE (models/ladder/, issue 21 sections 1-3): what its recipe
trains, the checkpoints' own description of their noise, each step of the argument in the shipped
figures (with slack, as test_beta_sweep does), the words the page builds from the figures, the page
through AppTest and in a real browser, and the rung variants trained for a moment on synthetic data.
Read-only on the shipped files: every one is opened, none is written."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from common import ladder_format
from common.atlas_format import load_atlas
from common.fileio import file_sha256
from common.paths import REPO_ROOT, atlas_path_for
from explorer import bundle, ladder, studio
from tests.test_app import TIMEOUT

FOLDER = REPO_ROOT / "models" / ladder_format.FAMILY
PATHS = [FOLDER / f"{r.file}.pt" for r in ladder_format.RUNGS]
PAGE = "from app.ladder_page import render\nrender()"


@pytest.fixture(scope="module")
def figs() -> list[ladder_format.RungFigures]:
    by_name = ladder_format.read_figures(FOLDER / ladder_format.FIGURES_FILE)
    return [by_name[ladder_format.checkpoint_name_of(r)] for r in ladder_format.RUNGS]


@pytest.fixture(scope="module")
def rungs() -> list[bundle.ExplorerModel]:
    return [bundle.load_explorer_model(p) for p in PATHS]


@pytest.fixture(scope="module")
def shares(rungs) -> list[ladder.PathShares]:
    return [ladder.path_shares(m.atlas.mu) for m in rungs]


# --- what is shipped -------------------------------------------------------------------------------

def test_the_ladder_is_shipped_whole_and_the_models_folder_stays_small(rungs):
    # what git ships (resume files and dynamics sidecars are git-ignored)
    names = sorted(f.name for f in FOLDER.iterdir() if f.is_file() and not f.name.endswith((".last.pt", ".dynamics.npz")))
    want = sorted([ladder_format.FIGURES_FILE] + [n for r in ladder_format.RUNGS for n in (f"{r.file}.pt", f"{r.file}.atlas.npz")])
    assert names == want
    shipped = [f for f in (REPO_ROOT / "models").rglob("*") if f.is_file() and not f.name.endswith((".last.pt", ".dynamics.npz"))]
    total = sum(f.stat().st_size for f in shipped)  # what git ships: resume files and sidecars are ignored
    assert total <= 45 * 2**20, f"models/ holds {total / 2**20:.1f} MiB"
    assert [m.name for m in rungs] == ["ladder/ae", "ladder/ae-noise", "ladder/ae-noise-kl", "ladder/vae"]


def test_the_figures_were_measured_on_the_shipped_checkpoints(figs, rungs):
    for fig, m in zip(figs, rungs):
        assert fig.sha256 == m.sha256 == file_sha256(m.path)


def test_the_vae_rung_is_the_beta_sweeps_beta_1_member_byte_for_byte():
    beta1 = REPO_ROOT / "models" / "beta" / "beta-1.pt"
    assert file_sha256(FOLDER / "vae.pt") == file_sha256(beta1)
    assert file_sha256(atlas_path_for(FOLDER / "vae.pt")) == file_sha256(atlas_path_for(beta1))


def test_each_rung_says_what_its_noise_is(rungs):
    """The config names the posterior; the log-variance the encoder reports is what the config says
    (the fixed head), in the atlas and in the NumPy runtime, for any input."""
    want = {"ladder/ae": ("none", -30.0), "ladder/ae-noise": ("fixed", 2 * math.log(0.15)),
            "ladder/ae-noise-kl": ("fixed", 2 * math.log(0.15)), "ladder/vae": ("learnt", None)}
    x = np.random.default_rng(0).random((5, 784)).astype(np.float32)
    for m in rungs:
        posterior, logvar = want[m.name]
        cfg = m.atlas.model_config
        assert cfg.get("posterior", "learnt") == posterior
        if logvar is None:
            assert np.ptp(m.atlas.logvar) > 0.5  # learnt: it varies with the digit and the unit
            continue
        # no noise: no KL and no ELBO in the atlas (the sidebar shows none), only the reconstruction
        assert (m.atlas.metrics.neg_elbo is None) == (posterior == "none") and m.atlas.metrics.recon is not None
        assert cfg["posterior_logvar"] == pytest.approx(logvar)
        assert np.allclose(m.atlas.logvar, logvar, atol=1e-5)
        _, lv = m.model.encode_mu_logvar(x)
        assert np.allclose(lv, logvar, atol=1e-5)


def test_every_rung_is_trained_the_same_way_but_for_noise_and_kl():
    """One recipe, the sweep's budget: the same preset, epochs, seed, optimiser, data settings."""
    from tests.test_recipes import NOT_TRAINING
    from training import recipes
    from training.checkpoint import read_checkpoint
    from training.config import TrainConfig, parse_args

    varying = {"posterior", "noise_sigma", "beta", "warmup_epochs", "eval_iw_samples"}
    shared = None
    for stage, path in zip(recipes.LADDER, PATHS):
        want = {k: v for k, v in parse_args(recipes.stage_argv(stage, 1, False)).to_dict().items() if k not in NOT_TRAINING}
        got = {k: v for k, v in TrainConfig.from_dict(read_checkpoint(path)["train_config"]).to_dict().items()
               if k not in NOT_TRAINING}
        assert got == want, stage.name
        common = {k: v for k, v in got.items() if k not in varying}
        assert shared is None or common == shared
        shared = common
    assert shared["epochs"] == 60 and shared["preset"] == "seed" and shared["atlas_subset"]


# --- the argument, step by step, in the shipped figures ---------------------------------------------

def test_step_1_the_autoencoder_reconstructs_best_but_its_codes_ignore_the_prior(figs):
    ae, noise, kl, vae = figs
    assert ae.recon < vae.recon - 2  # no noise: sharper reconstructions than the VAE (92.0 vs 97.3 nats)
    prior = ladder.prior_radius95(len(ae.mu_std))
    assert ae.radius95 > 2 * prior  # codes far outside N(0, I)'s bulk
    assert ae.recognised < 0.25 and ae.nll is None and ae.kl is None


def test_step_2_fixed_noise_without_kl_is_outrun_by_spreading_the_codes(figs):
    _, noise, _, _ = figs
    assert noise.noise_sigma == pytest.approx(0.15)
    assert min(noise.mu_std) > 5 * noise.noise_sigma  # every unit's codes spread far beyond the noise
    assert noise.radius95 > 2 * ladder.prior_radius95(len(noise.mu_std))
    assert noise.recognised < 0.25


def test_step_3_the_kl_pull_brings_the_codes_to_the_prior(figs, shares):
    _, noise, kl, _ = figs
    prior = ladder.prior_radius95(len(kl.mu_std))
    assert kl.radius95 < noise.radius95 / 2 and kl.radius95 < 1.5 * prior
    assert kl.recognised > noise.recognised + 0.1
    # straight paths between the pulled-in codes stay on the data (the studio's verdict, relative to
    # each model's own spacing, so the rungs' scales do not matter)
    assert shares[2].off < shares[1].off - 0.01 and shares[3].off < shares[0].off - 0.01
    assert kl.recon > noise.recon  # the pull costs reconstruction
    assert kl.nll < noise.nll


def test_step_4_learnt_noise_does_at_least_as_well_as_the_best_fixed_noise(figs, rungs):
    """sigma = 0.15 is the VAE's own typical learnt noise, so rung 3 is the best fixed level we know:
    the VAE matches it (within half a nat) without being told, and varies it by digit and unit."""
    _, _, kl, vae = figs
    assert vae.nll < kl.nll + 0.5
    assert vae.recognised > 0.25 and vae.recognised > kl.recognised - 0.05
    sigma = np.exp(0.5 * rungs[3].atlas.logvar)
    assert np.exp(np.log(sigma).mean()) == pytest.approx(0.15, abs=0.01)  # where the fixed level came from
    assert sigma.std() > 0.02


def test_the_path_verdicts_are_the_studios_own(rungs):
    """The k-d tree shortcut gives, code for code, the verdict of explorer.studio.plausibility."""
    m = rungs[0]
    spacing = studio.neighbour_spacing(m.atlas.mu)
    codes = ladder.straight_paths(m.atlas.mu.astype(np.float64), ladder.path_pairs(m.atlas.size, n_paths=12)).reshape(-1, m.latent_dim)
    assert ladder.verdicts(codes, m.atlas.mu, spacing) == [studio.plausibility(c, m.atlas.mu, spacing).verdict for c in codes]


# --- words from numbers ------------------------------------------------------------------------------

def _fake(**kw) -> ladder_format.RungFigures:
    base = dict(name="x", sha256="0" * 64, recon=100.0, nll=110.0, iw_samples=200, kl=10.0, mu_std=(1.0,) * 8,
                radius95=4.0, recognised=0.5, shown_labels=(0,) * 16, shown_confidence=(1.0,) * 16,
                noise_sigma=None, posterior="learnt")
    base.update(kw)
    return ladder_format.RungFigures(**base)


def test_the_sentences_follow_the_numbers_either_way(figs, shares):
    text = ladder.step_sentences(figs, shares)
    assert len(text) == 4 and f"{figs[0].recon:.1f} nats" in text[0] and f"{figs[2].radius95:.1f}" in text[2]
    ae = _fake(nll=None, kl=None, radius95=40.0, recognised=0.02, posterior="none")
    noise = _fake(radius95=60.0, recognised=0.03, noise_sigma=0.15, mu_std=(5.0,) * 8, posterior="fixed", nll=300.0)
    kl = _fake(radius95=4.0, recognised=0.4, noise_sigma=0.15, posterior="fixed", nll=120.0)
    vae = _fake(nll=110.0)
    told = ladder.step_sentences([ae, noise, kl, vae], [ladder.PathShares(v, 0.0) for v in (0.1, 0.2, 0.05, 0.05)])
    assert "spreads its codes wider" in told[1] and "hardly blurs" in told[1] and "only 3.0 % of draws" in told[1]
    assert "none of the 1,000 draws from N(0, I)" in ladder.step_sentences([replace(ae, recognised=0.0), noise, kl, vae], [ladder.PathShares(0, 0)] * 4)[0]
    assert "pulls the codes in" in told[2] and "rise" in told[2] and "fewer codes" in told[2]
    assert "at a cost of" in ladder.step_sentences([ae, noise, replace(kl, recon=105.0), vae], [ladder.PathShares(0, 0)] * 4)[2]
    assert "even improves by 5.0" in ladder.step_sentences([ae, noise, replace(kl, recon=95.0), vae], [ladder.PathShares(0, 0)] * 4)[2]
    assert "improves" in told[3]
    # the same sentences with the figures turned around say the opposite
    told = ladder.step_sentences([replace(ae, radius95=80.0), replace(noise, mu_std=(0.2,) * 8),
                                  replace(kl, radius95=90.0, recognised=0.01), replace(vae, nll=130.0)],
                                 [ladder.PathShares(0.0, v) for v in (0.1, 0.05, 0.2, 0.2)])
    assert "gathers its codes closer" in told[1] and "blurs them" in told[1] and "hardly" not in told[1]
    assert "pushes the codes out" in told[2] and "fall" in told[2] and "more codes" in told[2] and "near N(0, I)" not in told[2]
    assert "worsens" in told[3]


def test_the_figures_file_is_checked(tmp_path, figs):
    good = tmp_path / "figures.json"
    ladder_format.write_figures(good, figs, {"command": "test"})
    assert list(ladder_format.read_figures(good).values()) == list(figs)
    with pytest.raises(ladder_format.LadderFiguresError, match="python -m training.ladder"):
        ladder_format.read_figures(tmp_path / "missing.json")
    doc = json.loads(good.read_text())
    doc["rungs"][0]["recognised"] = 1.5
    good.write_text(json.dumps(doc))
    with pytest.raises(ladder_format.LadderFiguresError, match="impossible"):
        ladder_format.read_figures(good)
    good.write_text("{not json")
    with pytest.raises(ladder_format.LadderFiguresError, match="cannot be read"):
        ladder_format.read_figures(good)


def test_the_picker_names_the_rungs_in_plain_words():
    assert ladder_format.display_name("ladder/ae", "ladder / ae.pt") == "ladder / 1 · plain autoencoder"
    assert ladder_format.display_name("ladder/vae", "x") == "ladder / 4 · VAE: learnt noise + KL"
    assert ladder_format.display_name("beta/beta-1", "beta / beta-1.pt") == "beta / beta-1.pt"


def test_pictures_helpers():
    strip = np.full((28, 3 * 28 + 4), 255, np.uint8)
    rgb = ladder.mark_frames(strip, ["typical", "hole", "sparse"], cols=3, cell=28, gutter=2)
    assert rgb.shape == (28, 88, 3)
    assert (rgb[0, 30] == (214, 39, 40)).all() and (rgb[0, 60] == (255, 127, 14)).all()
    assert (rgb[0, 0] == 255).all() and (rgb[14, 45] == 255).all()
    grid = ladder.mark_frames(np.full((58, 58), 255, np.uint8), ["typical", "typical", "typical", "hole"], cols=2, cell=28, gutter=2)
    assert (grid[30, 30] == (214, 39, 40)).all() and (grid[0, 0] == 255).all() and (grid[29, 29] == 255).all()
    path = ladder.page_path(np.zeros(8), np.ones(8), steps=5)
    assert path.shape == (5, 8) and path[0].sum() == 0 and path[-1].sum() == 8
    assert ladder.shared_extent([np.ones((10, 2)), 3 * np.ones((10, 2))], pad=0.0) == pytest.approx(3.0)


# --- the page ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shipped_page() -> AppTest:
    mp = pytest.MonkeyPatch()
    mp.delenv(bundle.MODELS_DIR_ENV, raising=False)
    at = AppTest.from_string(PAGE, default_timeout=TIMEOUT)
    at.run()
    mp.undo()
    assert not at.exception, at.exception
    return at


def test_the_page_shows_the_four_rungs_with_their_sentences_and_figures(shipped_page, figs, shares):
    at = shipped_page
    assert [s.value for s in at.subheader] == [r.title for r in ladder_format.RUNGS]
    assert not at.error and not at.warning
    markdown = [m.value for m in at.markdown]
    for sentence in ladder.step_sentences(figs, shares):
        assert sentence in markdown
    for fig, share in zip(figs, shares):
        assert any(f"recognisable prior draws: **{100 * fig.recognised:.1f} %**" in m and
                   f"off the data: **{100 * share.off:.1f} %**" in m and f"radius **{fig.radius95:.2f}**" in m
                   for m in markdown)
    maps = [json.loads(e.proto.spec) for e in at.get("plotly_chart")]
    assert len(maps) == 4
    ranges = {(tuple(f["layout"]["xaxis"]["range"]), tuple(f["layout"]["yaxis"]["range"])) for f in maps}
    assert len(ranges) == 1  # one scale for every rung
    assert all(f["layout"]["xaxis"]["showticklabels"] for f in maps)
    assert len(at.get("image")) == 8  # prior draws and interpolation, per rung


def _copy_ladder(tmp_path: Path) -> Path:
    target = tmp_path / "models" / ladder_format.FAMILY
    shutil.copytree(FOLDER, target)
    return tmp_path / "models"


def test_the_page_refuses_figures_of_other_checkpoints(tmp_path, monkeypatch):
    models = _copy_ladder(tmp_path)
    doc_path = models / ladder_format.FAMILY / ladder_format.FIGURES_FILE
    doc = json.loads(doc_path.read_text())
    doc["rungs"][2]["sha256"] = "f" * 64
    doc_path.write_text(json.dumps(doc))
    monkeypatch.setenv(bundle.MODELS_DIR_ENV, str(models))
    at = AppTest.from_string(PAGE, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    assert "ladder/ae-noise-kl" in at.error[0].value and "python -m training.ladder" in at.error[0].value
    assert not at.subheader


def test_the_page_says_how_to_train_a_missing_ladder(tiny_models_dir, monkeypatch):
    monkeypatch.setenv(bundle.MODELS_DIR_ENV, str(tiny_models_dir))
    at = AppTest.from_string(PAGE, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception and len(at.warning) == 4
    assert "python -m training.recipes ladder" in at.info[0].value


@pytest.mark.browser
def test_the_page_opens_in_a_browser_with_four_rungs(tmp_path):
    """The real app, the real navigation: the ladder page from the sidebar shows the four rungs, each
    with its pictures and map, and no error."""
    import os

    from tests import test_browser as tb

    server = tb.AppServer(REPO_ROOT / "models", tmp_path / "server.log")
    server.start(timeout=tb.START_TIMEOUT)
    try:
        with tb.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=tb.CHROMIUM, args=tb.CHROMIUM_ARGS)
            pg = tb.open_page(browser.new_context(viewport={"width": 1440, "height": 900}), server.url)
            tb.wait_rendered(pg)
            pg.locator("[data-testid='stSidebarNav']").get_by_text("From autoencoder to VAE").click()
            pg.wait_for_url("**/ladder", timeout=tb.STEP_TIMEOUT)
            for rung in ladder_format.RUNGS:
                tb.expect(pg.get_by_role("heading", name=rung.title)).to_have_count(1, timeout=tb.RENDER_TIMEOUT)
            tb.expect(pg.locator("[data-testid='stPlotlyChart'] .main-svg").first).to_be_visible(timeout=tb.RENDER_TIMEOUT)
            tb.expect(pg.locator("[data-testid='stPlotlyChart']")).to_have_count(4, timeout=tb.RENDER_TIMEOUT)
            tb.expect(pg.locator("[data-testid='stImage'] img")).to_have_count(8, timeout=tb.RENDER_TIMEOUT)
            tb.wait_idle(pg)
            tb.assert_healthy(pg)
            drawn = lambda q: q.wait_for_function(tb.TUG_DRAWN_JS, timeout=tb.STEP_TIMEOUT)  # noqa: E731
            tb.save_full_page(pg, tmp_path / "ladder.png", drawn)
            if target := os.environ.get("LADDER_SCREENSHOT"):  # how docs/ladder.png is made (docs/ladder.md)
                tb.save_full_page(pg, Path(target), drawn)
            browser.close()
    finally:
        server.stop()


# --- the rung variants, trained for a moment on synthetic digits ---------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("posterior, sigma, beta", [("none", None, 0.0), ("fixed", 0.3, 0.0), ("fixed", 0.3, 1.0)])
def test_each_rung_variant_trains_with_the_noise_it_says(tmp_path, tiny_tensors, posterior, sigma, beta):
    import torch

    from tests.test_training import tiny_cfg
    from training.checkpoint import load_vae, read_checkpoint
    from training.loss import gaussian_kl
    from training.model import NO_NOISE_LOGVAR
    from training.train import train

    tr_x, _, te_x, _ = tiny_tensors
    cfg = tiny_cfg(tmp_path, epochs=2, posterior=posterior, noise_sigma=sigma, beta=beta, warmup_epochs=0.0)
    result = train(cfg, tr_x, te_x, log=lambda s: None)
    model = load_vae(result.best_path)
    assert model.config.posterior == posterior
    want = NO_NOISE_LOGVAR if posterior == "none" else 2 * math.log(sigma)
    mu, logvar = model.encode(te_x)
    assert torch.allclose(logvar, torch.full_like(logvar, want))  # the head stayed what the config says
    assert read_checkpoint(result.best_path)["model_config"]["posterior_logvar"] == pytest.approx(want)
    torch.manual_seed(0)
    z_spread = torch.stack([model(te_x[:8])[0] for _ in range(3)]).std(0).max().item()
    if posterior == "none":
        assert z_spread == 0.0  # no noise: the same code, the same logits, every time
        from training.evaluate import evaluate

        metrics = evaluate(model, te_x, iw_samples=5, progress=False)
        assert "neg_elbo" not in metrics and "kl" not in metrics and metrics["recon"] > 0  # no made-up ELBO
        assert "nll" not in metrics  # nor an NLL: a point posterior defines no density
    else:
        assert z_spread > 0.0
    history = read_checkpoint(result.best_path)["history"]
    assert all(math.isfinite(h["test_neg_elbo"]) for h in history)
    # with beta 0 the KL gets no weight: the best epoch is chosen by reconstruction alone
    if beta == 0.0:
        assert read_checkpoint(result.best_path)["best_selection_score"] == pytest.approx(min(h["test_recon"] for h in history))
    # the KL pull reaches the means only: its gradient on the frozen head is none
    model.train()
    gaussian_kl(*model.encode(te_x)).sum().backward()
    assert model.log_scale_head.weight.grad is None and model.mu_head.weight.grad.abs().sum() > 0


@pytest.mark.slow
def test_the_measured_figures_are_reproduced_from_the_shipped_rungs(figs):
    """training.ladder on the shipped rungs gives the figures the page shows (deterministic probes)."""
    import torch

    from training import ladder as tladder
    from training.data import DEFAULT_ROOT, MNIST_FILES, load_mnist

    if not (DEFAULT_ROOT / "MNIST" / "raw").is_dir():
        pytest.skip("MNIST is not in data/ (python -m training.data fetches it)")
    torch.set_num_threads(1)
    images, _ = load_mnist(DEFAULT_ROOT, False, MNIST_FILES, ())
    from tools.digit_classifier import load_classifier

    classifier, _ = load_classifier(tladder.CLASSIFIER)
    for rung, fig in zip(ladder_format.RUNGS[::3], figs[::3]):  # the two ends of the ladder
        again = tladder.rung_figures(fig.name, FOLDER / f"{rung.file}.pt", images, classifier)
        assert again.recognised == pytest.approx(fig.recognised, abs=1e-9)
        assert again.radius95 == pytest.approx(fig.radius95, rel=1e-5) and again.recon == pytest.approx(fig.recon, rel=1e-5)


def test_the_recipe_ships_the_sweeps_member_as_the_vae_rung_without_training_it_again(tmp_path, monkeypatch):
    """A stage with copy_to whose checkpoint and atlas exist is copied byte for byte, not rerun;
    a second run finds the copy identical and leaves it."""
    from training import recipes

    source, target = tmp_path / "beta" / "beta-1.pt", tmp_path / "ladder" / "vae.pt"
    source.parent.mkdir()
    source.write_bytes(b"checkpoint bytes")
    atlas_path_for(source).write_bytes(b"atlas bytes")
    stage = recipes.Stage("vae", ("--output", str(source)), copy_to=str(target))
    monkeypatch.setitem(recipes.RECIPES, "tiny-copy", (stage,))

    def must_not_run(argv):  # noqa: ANN001
        raise AssertionError(f"the shipped member was trained again: {argv}")

    logs: list[str] = []
    assert recipes.run_recipe("tiny-copy", progress=False, log=logs.append, run_stage=must_not_run) == 0
    assert target.read_bytes() == b"checkpoint bytes" and atlas_path_for(target).read_bytes() == b"atlas bytes"
    assert any("copying it to" in line for line in logs)
    before = target.stat().st_mtime_ns
    assert recipes.run_recipe("tiny-copy", progress=False, log=logs.append, run_stage=must_not_run) == 0
    assert target.stat().st_mtime_ns == before
    # the real ladder's last stage is the sweep's beta = 1 stage, copied to models/ladder/vae.pt
    assert recipes.LADDER[-1].argv == recipes.beta_stage("1").argv and recipes.LADDER[-1].copy_to == "models/ladder/vae.pt"
