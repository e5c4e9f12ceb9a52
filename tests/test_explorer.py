"""Unit tests for every computation the app shows (explorer/ minus preprocessing)."""

from __future__ import annotations

import shutil

import numpy as np
import plotly.graph_objects as go
import pytest

from explorer import bundle, codes, figures, projection, state
from explorer import studio as studio_view
from common.paths import REPO_ROOT as REPO, atlas_path_for


@pytest.fixture(scope="module")
def em(tiny_models_dir) -> bundle.ExplorerModel:
    return bundle.load_explorer_model(tiny_models_dir / "default.pt")


# --- bundle ----------------------------------------------------------------------------------

def test_list_checkpoints_skips_resume_files_and_puts_default_first(tmp_path):
    for name in ("zeta.pt", "default.pt", "alpha.pt", "default.last.pt", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in bundle.list_checkpoints(tmp_path)] == ["default.pt", "alpha.pt", "zeta.pt"]
    assert bundle.list_checkpoints(tmp_path / "missing") == []


def test_list_checkpoints_lists_a_family_folder_after_the_top_level_in_natural_order(tmp_path):
    beta = tmp_path / "beta"
    beta.mkdir()
    for name in ("beta-16.pt", "beta-2.pt", "beta-0.5.pt", "beta-2.last.pt"):
        (beta / name).write_bytes(b"x")
    for name in ("seed.pt", "default.pt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.pt").write_bytes(b"x")
    paths = bundle.list_checkpoints(tmp_path)
    assert [bundle.checkpoint_name(p, tmp_path) for p in paths] == [
        "default", "seed", "beta/beta-0.5", "beta/beta-2", "beta/beta-16"]
    assert bundle.checkpoint_name(tmp_path / "elsewhere" / "m.pt", beta) == "m"


def test_load_explorer_model_facts(em):
    from explorer.numpy_vae import NumpyVAE

    assert em.latent_dim == 8 and isinstance(em.model, NumpyVAE)
    assert em.atlas.mu.shape == (300, 8) and em.atlas.tsne.shape == (300, 2)
    f = em.facts
    assert f.latent_dim == 8 and f.epochs_trained == 3 and f.iw_samples == 5
    assert [(st.objective, st.epochs) for st in f.stages] == [("ELBO", 3)] and f.epochs_total == 3
    assert bundle.describe_stages(f.stages) == ""  # one stage: nothing to explain
    assert np.isfinite(f.test_nll) and 0 <= f.active_units <= 8 and f.encoder_sizes == (784, 32, 8)


def test_describe_stages_reads_oldest_first():
    stages = (bundle.Stage("ELBO", 250), bundle.Stage("IWAE bound (k=5)", 40), bundle.Stage("IWAE bound (k=5)", 300))
    assert bundle.describe_stages(stages) == "250 epochs on the ELBO → 40 on the IWAE bound (k=5) → 300 on the IWAE bound (k=5)"


def test_missing_atlas_says_how_to_fix(tmp_path, tiny_models_dir):
    shutil.copy(tiny_models_dir / "default.pt", tmp_path / "m.pt")
    with pytest.raises(bundle.ModelUnavailableError, match="python -m training.export"):
        bundle.load_explorer_model(tmp_path / "m.pt")


def test_stale_atlas_is_refused(tmp_path, tiny_models_dir):
    ckpt = tmp_path / "m.pt"
    shutil.copy(tiny_models_dir / "default.pt", ckpt)
    shutil.copy(atlas_path_for(tiny_models_dir / "default.pt"), atlas_path_for(ckpt))
    ckpt.write_bytes(ckpt.read_bytes() + b"\0")  # another version of the checkpoint file
    with pytest.raises(bundle.ModelUnavailableError):
        bundle.load_explorer_model(ckpt)


def test_broken_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "bad.pt").write_text("not a checkpoint")
    with pytest.raises(bundle.ModelUnavailableError, match="bad.pt"):
        bundle.load_explorer_model(tmp_path / "bad.pt")


# --- codes ------------------------------------------------------------------------------------

def test_decode_shapes_and_range(em):
    one = codes.decode_pixels(em.model, np.zeros(8, np.float32))
    many = codes.decode_pixels(em.model, np.zeros((3, 8), np.float32))
    assert one.shape == (28, 28) and many.shape == (3, 28, 28)
    assert one.dtype == np.float32 and 0 <= one.min() and one.max() <= 1
    assert not np.allclose(one, codes.decode_pixels(em.model, np.full(8, 3.0, np.float32)))


def test_encode_and_posterior_samples(em):
    img = em.atlas.images[0].reshape(28, 28) / 255.0
    mu, sigma = codes.encode_mu_sigma(em.model, img)
    assert np.allclose(mu, em.atlas.mu[0], atol=1e-5)
    assert np.allclose(sigma, np.exp(0.5 * em.atlas.logvar[0]), atol=1e-5)
    s1 = codes.posterior_samples(em.model, mu, sigma, 6, seed=0)
    s2 = codes.posterior_samples(em.model, mu, sigma, 6, seed=0)
    assert s1.shape == (6, 28, 28) and np.array_equal(s1, s2)
    assert not np.allclose(s1[0], s1[1])  # the draws differ: that is the noise being shown
    still = codes.posterior_samples(em.model, mu, np.zeros_like(sigma), 2)
    assert np.allclose(still[0], codes.decode_pixels(em.model, mu), atol=1e-6)


def test_elbo_split(em):
    img = em.atlas.images[1].reshape(28, 28) / 255.0
    e = codes.elbo_split(em.model, img)
    assert e.neg_elbo == pytest.approx(e.recon + e.kl) and e.kl > 0 and e.recon > 0
    mu, sigma = codes.encode_mu_sigma(em.model, img)
    assert e.kl == pytest.approx(0.5 * float((mu**2 + sigma**2 - 1 - 2 * np.log(sigma)).sum()), rel=1e-4)


def test_class_gaussian_and_sampling():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(500, 3)).astype(np.float32)
    labels = np.repeat(np.arange(10), 50)
    mu[labels == 7] += 2.0
    mean, cov = codes.class_gaussian(mu, labels, 7)
    assert np.allclose(mean, mu[labels == 7].mean(0)) and np.allclose(cov, np.cov(mu[labels == 7].T))
    draws = np.array([codes.sample_class(mean, cov, rng) for _ in range(400)])
    assert np.allclose(draws.mean(0), mean, atol=0.25)
    assert np.abs(codes.sample_prior(8, rng)).max() <= codes.SLIDER_LIMIT
    assert codes.clip_code(np.array([9.0, -9.0, 0.5])).tolist() == [4.0, -4.0, 0.5]
    with pytest.raises(ValueError):
        codes.class_gaussian(mu, labels, 11)


# --- projection -------------------------------------------------------------------------------

def test_pca_projection_is_exact_for_atlas_codes(em):
    a = em.atlas
    assert np.allclose(projection.pca_project(a.mu, a.pca_mean, a.pca_components), a.pca, atol=1e-4)
    assert np.allclose(projection.place(a.mu[5], a, "PCA"), a.pca[5], atol=1e-4)


def test_knn_placement(em):
    a = em.atlas
    # A code equal to a test code lands (almost) on that code's t-SNE position.
    assert np.allclose(projection.place(a.mu[7], a, "t-SNE"), a.tsne[7], atol=1e-2)
    mu = np.array([[0.0, 0], [1, 0], [10, 10]], np.float32)
    coords = np.array([[0.0, 0], [2, 0], [100, 100]], np.float32)
    assert np.allclose(projection.knn_place(np.array([0.5, 0], np.float32), mu, coords, k=2), [1.0, 0.0])
    idx, dist = projection.nearest(np.array([0.9, 0], np.float32), mu, 2)
    assert idx.tolist() == [1, 0] and dist[0] == pytest.approx(0.1, abs=1e-6)
    with pytest.raises(ValueError):
        projection.map_coords(a, "UMAP")


# --- state / callbacks ------------------------------------------------------------------------

def test_one_code_in_state_snapped_to_the_slider_grid():
    s: dict = {}
    assert state.current_code(s, 3).tolist() == [0.0, 0.0, 0.0]
    cs = state.set_code(s, np.array([7.0, -0.123, 1.126]), "a test")
    assert cs.z == (4.0, -0.1, 1.15) and all(type(v) is float for v in cs.z) and cs.rev == 1 and cs.source == "a test"
    assert state.current_code(s, 3).tolist() == pytest.approx([4.0, -0.1, 1.15])
    assert state.current(s, 2).z == (0.0, 0.0) and state.current(s, 2).rev == 2  # another latent size: reset


@pytest.mark.parametrize("customdata", [[42], 42, (42,)])
def test_map_click_loads_posterior_mean(customdata):
    mu = np.random.default_rng(0).normal(size=(100, 8)).astype(np.float32)
    s = {state.MAP_KEY: {"selection": {"points": [{"curve_number": 3, "point_index": 0, "customdata": customdata}]}}}
    assert state.on_map_select(s, mu) == 42
    assert s[state.SELECTED_KEY] == 42 and s[state.NOISE_KEY] == state.clicked_label(42)
    assert state.current_code(s, 8) == pytest.approx(np.round(np.clip(mu[42], -4, 4) / 0.05) * 0.05, abs=1e-6)


@pytest.mark.parametrize("selection", [None, {}, {"selection": {"points": []}}, {"selection": {"points": [{"x": 1}]}},
                                       {"selection": {"points": [{"customdata": [500]}]}}])
def test_map_click_without_a_usable_point_changes_nothing(selection):
    s = {state.MAP_KEY: selection}
    before = state.set_code(s, [1.0], "a test")
    assert state.on_map_select(s, np.zeros((100, 1), np.float32)) is None
    assert s[state.CODE_KEY] == before and state.SELECTED_KEY not in s


# --- figures ----------------------------------------------------------------------------------

def test_latent_map_figure(em):
    a = em.atlas
    fig = figures.latent_map_figure(a.tsne, a.labels, "t-SNE", [("your upload", np.array([0.0, 1.0]), "diamond")])
    digit_traces = [t for t in fig.data if t.name in [str(d) for d in range(10)]]
    assert all(isinstance(t, go.Scattergl) for t in fig.data)  # markers too, or the canvas hides them
    assert [t.name for t in digit_traces] == [str(d) for d in range(10)]
    index = np.concatenate([t.customdata for t in digit_traces])
    assert sorted(index.tolist()) == list(range(300))  # every test digit once, by its row index
    t3 = digit_traces[3]
    assert (a.labels[t3.customdata] == 3).all() and np.allclose(t3.x, a.tsne[t3.customdata, 0])
    assert fig.data[-1].name == "your upload" and fig.data[-1].x == (0.0,)
    assert "test index" in t3.hovertemplate
    # a swipe scrolls the page unless the learner chose to pan
    assert fig.layout.dragmode is False
    assert figures.latent_map_figure(a.tsne, a.labels, "t-SNE", pan=True).layout.dragmode == "pan"


def test_density_grid_tells_dense_sparse_and_absent():
    rng = np.random.default_rng(0)
    blobs = np.vstack([rng.normal((-3, 0), 0.3, (900, 2)), rng.normal((3, 0), 0.3, (900, 2)),
                       rng.uniform((-5, 2), (5, 4), (60, 2))])  # two dense blobs, a thin band above
    xc, yc, classes = figures.density_grid(blobs, (-6, 6), (-6, 6), bins=24)
    cell = lambda x, y: classes[np.argmin(np.abs(yc - y)), np.argmin(np.abs(xc - x))]  # noqa: E731
    assert cell(-3, 0) == 2 and cell(3, 0) == 2  # dense
    assert cell(0, 3) == 1  # the band: sparse
    assert cell(0, 0) == 0 and cell(0, -5) == 0  # between the blobs and below: no code, a hole


def test_the_pca_map_shades_holes_and_the_tsne_map_does_not(em):
    a = em.atlas
    pca = figures.latent_map_figure(a.pca, a.labels, "PCA")
    assert isinstance(pca.data[0], go.Heatmap) and pca.data[0].hoverinfo == "skip"
    assert {t.name for t in pca.data if t.legendgroup == "background"} == set(figures.DENSITY_CLASSES)
    assert np.isin(np.asarray(pca.data[0].z), [0, 1, 2]).all()
    lo, hi = pca.layout.xaxis.range
    assert lo < a.pca[:, 0].min() and hi > a.pca[:, 0].max()  # a margin of "absent" around the codes
    tsne = figures.latent_map_figure(a.tsne, a.labels, "t-SNE")
    assert not any(isinstance(t, go.Heatmap) for t in tsne.data)


def test_a_code_off_the_data_is_drawn_apart_on_tsne_and_in_place_on_pca(em):
    a = em.atlas
    spacing = studio_view.neighbour_spacing(a.mu)
    far = a.mu.max(0) + 6.0  # far beyond every test code: the studio calls it a hole
    assert studio_view.plausibility(far, a.mu, spacing).verdict == "hole"
    near = a.mu[7]
    marks = {p: [figures.map_marker("your upload", far, a, p, spacing, "diamond"),
                 figures.map_marker("your drawing", near, a, p, spacing, "square")] for p in ("PCA", "t-SNE")}
    assert marks["t-SNE"][0][3].startswith("a hole, ") and marks["t-SNE"][1][3] == ""
    tsne = figures.latent_map_figure(a.tsne, a.labels, "t-SNE", marks["t-SNE"])
    upload, drawing = tsne.data[-2], tsne.data[-1]
    assert upload.name == "your upload (off the data)" and drawing.name == "your drawing"
    assert upload.x[0] < a.tsne[:, 0].min()  # left of every digit: in the "off the data" box, not among neighbours
    assert np.allclose([drawing.x[0], drawing.y[0]], projection.knn_place(near, a.mu, a.tsne))
    assert any("off the data" in ann.text for ann in tsne.layout.annotations)
    pca = figures.latent_map_figure(a.pca, a.labels, "PCA", marks["PCA"])
    exact = projection.pca_project(far, a.pca_mean, a.pca_components)
    assert np.allclose([pca.data[-2].x[0], pca.data[-2].y[0]], exact, atol=1e-5)  # PCA is exact: in place
    assert pca.data[-2].name == "your upload (off the data)"
    lo, hi = pca.layout.xaxis.range
    assert lo <= exact[0] <= hi  # and on screen


def test_path_figure_puts_distance_and_norm_on_separate_panels():
    t = np.linspace(0, 1, 5)
    fig = figures.path_figure(t, np.array([0.1, 0.8, 2.5, 0.8, 0.1]), ["typical", "typical", "sparse", "typical", "typical"],
                              1.0, 4.0, np.array([3.0, 2.0, 1.2, 2.0, 3.0]))
    distance, norm = fig.data
    assert distance.yaxis == "y" and norm.yaxis == "y2" and fig.layout.yaxis2.overlaying is None
    top, bottom = fig.layout.yaxis.domain, fig.layout.yaxis2.domain
    assert min(top) >= max(bottom)  # stacked, never drawn over each other
    hole_lines = [s for s in fig.layout.shapes if s.type == "line" and s.y0 == 4.0]
    assert len(hole_lines) == 1 and hole_lines[0].yref == "y"  # the threshold belongs to the distance axis
    assert fig.layout.yaxis.range[1] > 4.0 and fig.layout.yaxis2.tickformat == ".1f"
    titles = [a for a in fig.layout.annotations if a.text.startswith(("distance", "norm"))]
    assert len(titles) == 2 and all(a.xanchor == "left" and a.x == 0 for a in titles)  # horizontal, left: clear of the toolbar
    assert not fig.layout.yaxis.title.text and not fig.layout.yaxis2.title.text  # no rotated titles


def test_posterior_figure():
    fig = figures.posterior_figure(np.array([0.5, -1.0]), np.array([0.1, 0.9]), np.array([2.0, 0.01]))
    assert list(fig.data[0].x) == [0.5, -1.0] and list(fig.data[0].error_x.array) == [0.1, 0.9]


def test_upscale_and_grid():
    img = np.zeros((28, 28), np.float32)
    img[3, 4] = 1.0
    big = figures.upscale(img, 8)
    assert big.shape == (224, 224) and big.dtype == np.uint8
    assert (big[24:32, 32:40] == 255).all() and big[23, 32] == 0 and big.sum() == 255 * 64  # crisp pixels
    grid = figures.image_grid(np.stack([img] * 7), cols=3, scale=2, gap=2)
    assert grid.shape == (3 * 56 + 2 * 2, 3 * 56 + 2 * 2)


# --- NumPy forward pass (the app runs without torch) ------------------------------------------

@pytest.mark.parametrize("preset,activation", [("seed", "relu"), ("default", "relu"), ("default", "elu"),
                                               ("default", "silu"), ("default", "tanh")])
def test_numpy_vae_matches_torch(preset, activation):
    import torch

    from explorer.numpy_vae import NumpyVAE
    from training.model import VAE, preset_config

    torch.manual_seed(0)
    cfg = preset_config(preset, activation=activation, encoder_hidden=(24, 16) if preset == "default" else None,
                        decoder_hidden=(16, 24) if preset == "default" else None)
    tm = VAE(cfg).eval()
    nm = NumpyVAE(cfg.to_dict(), {k: v.numpy() for k, v in tm.state_dict().items()})
    x = torch.rand(5, 784)
    with torch.no_grad():
        mu_t, logvar_t = tm.encode(x)
        logits_t = tm.decode(mu_t)
    mu_n, logvar_n = nm.encode_mu_logvar(x.numpy())
    assert np.allclose(mu_n, mu_t.numpy(), atol=1e-5) and np.allclose(logvar_n, logvar_t.numpy(), atol=1e-5)
    assert np.allclose(nm.decode_logits(mu_n), logits_t.numpy(), atol=1e-4)
    assert nm.num_parameters() == tm.num_parameters() and nm.latent_dim == cfg.latent_dim


def test_numpy_vae_rejects_mismatched_weights():
    from explorer.numpy_vae import NumpyVAE
    from training.model import VAE, ModelConfig

    tm = VAE(ModelConfig(encoder_hidden=(16,), decoder_hidden=(16,), latent_dim=4))
    weights = {k: v.numpy() for k, v in tm.state_dict().items()}
    with pytest.raises(ValueError, match="do not match"):
        NumpyVAE({**tm.config.to_dict(), "encoder_hidden": [16, 16]}, weights)


def test_app_modules_do_not_import_torch():
    """The app package and the runtime import neither torch nor training (the lean install has no torch)."""
    import subprocess
    import sys

    code = ("import sys, app.main, app.explorer_page, app.models, explorer.analysis, common.atlas_format; "
            "print(sorted(m for m in ('torch', 'training', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=str(REPO))
    assert out.stdout.strip() == "[]"
