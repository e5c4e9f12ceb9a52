"""tools/: reconstruction classifier and figures, on tiny models and synthetic data (no network)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from tools import prior_sample_means, reconstruct_means
from tools import figures
from tools import digit_classifier as dc
from tools import recon_classifier as rc
from training.checkpoint import save_checkpoint
from training.model import VAE, ModelConfig

TINY = ModelConfig(encoder_hidden=(16,), decoder_hidden=(16,), latent_dim=2)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def tiny_vae() -> VAE:
    torch.manual_seed(0)
    return VAE(TINY).eval()


@pytest.fixture
def tiny_ckpt(tmp_path: Path, tiny_vae: VAE) -> Path:
    path = tmp_path / "models" / "tiny.pt"
    save_checkpoint(path, {"model_config": tiny_vae.config.to_dict(), "model_state": tiny_vae.state_dict(), "epoch": 0})
    return path


@pytest.fixture
def offline_tiny_root(tiny_mnist, monkeypatch) -> Path:
    """The conftest tiny MNIST root, made the 'official' files, with every download source disabled."""
    from training import data, mnist_sources

    root, md5 = tiny_mnist
    monkeypatch.setattr(data, "MNIST_FILES", md5)  # the tools read data.MNIST_FILES at call time
    monkeypatch.setattr(mnist_sources, "DEFAULT_SOURCES", ())  # nothing may be fetched
    return root


class LookupClassifier(nn.Module):
    """Predicts the class written in pixel 0 as value class/10: perfect on data built that way."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -(x[:, :1] - torch.arange(10) / 10.0).abs()


def coded_data(n: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.arange(n) % 10
    x = torch.zeros(n, 784)
    x[:, 0] = y / 10.0
    return x, y


# ------------------------------------------------------------------------------- shared helpers


def test_reconstruct_means_decodes_posterior_mean_deterministically(tiny_vae, tiny_tensors):
    x = tiny_tensors[2]
    with torch.no_grad():
        expected = torch.sigmoid(tiny_vae.decode(tiny_vae.encode(x)[0]))
    got = reconstruct_means(tiny_vae, x, batch_size=7)  # several batches, one ragged
    assert got.shape == (64, 784)
    assert torch.allclose(got, expected, atol=1e-6)
    assert torch.equal(got, reconstruct_means(tiny_vae, x, batch_size=7))


def test_prior_sample_means_fixed_seed(tiny_vae):
    a, b, c = prior_sample_means(tiny_vae, 5, seed=3), prior_sample_means(tiny_vae, 5, seed=3), prior_sample_means(tiny_vae, 5, seed=4)
    assert a.shape == (5, 784) and torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0


# ------------------------------------------------------------------------------------ accuracy


def test_accuracy_is_one_for_a_perfect_classifier_and_drops_with_wrong_labels():
    x, y = coded_data(50)
    clf = LookupClassifier()
    assert dc.accuracy(clf, x, y, batch_size=16) == 1.0
    wrong = y.clone()
    wrong[:10] = (wrong[:10] + 1) % 10
    assert dc.accuracy(clf, x, wrong) == pytest.approx(0.8)
    assert dc.accuracy(clf, x, (y + 1) % 10) == 0.0
    assert dc.per_class_accuracy(dc.predict(clf, x), wrong) == [0.8] * 10
    with pytest.raises(ValueError):
        dc.accuracy(clf, x[:0], y[:0])


def test_train_classifier_learns_separable_synthetic_digits(tiny_tensors):
    tr_x, tr_y, te_x, te_y = tiny_tensors
    clf = dc.train_classifier(tr_x, tr_y, epochs=8, batch_size=32, max_lr=1e-2, seed=0)
    assert not clf.training
    assert dc.accuracy(clf, tr_x, tr_y) >= 0.95
    assert dc.accuracy(clf, te_x, te_y) >= 0.9
    # deterministic for a seed, and leaves the global RNG alone
    state = torch.get_rng_state()
    again = dc.train_classifier(tr_x, tr_y, epochs=1, batch_size=64, seed=5)
    assert torch.equal(torch.get_rng_state(), state)
    same = dc.train_classifier(tr_x, tr_y, epochs=1, batch_size=64, seed=5)
    assert all(torch.equal(p, q) for p, q in zip(again.state_dict().values(), same.state_dict().values()))


def test_classifier_save_load_roundtrip_and_cache(tmp_path, offline_tiny_root, monkeypatch):
    path = tmp_path / "artifacts" / "clf.pt"
    cfg = {**dc.DEFAULT_TRAIN, "epochs": 1}
    clf, meta = dc.get_classifier(path, offline_tiny_root, cfg, log=lambda _: None)
    assert path.is_file() and meta["train_size"] == 256 and 0.0 <= meta["test_accuracy"] <= 1.0
    torch.load(path, weights_only=True)  # plain tensors and types only
    loaded, meta2 = dc.load_classifier(path)
    x = torch.rand(8, 784)
    assert torch.equal(loaded(x), clf(x)) and meta2["test_accuracy"] == meta["test_accuracy"]

    def no_training(*a, **k):
        raise AssertionError("the cached classifier should have been reused")

    monkeypatch.setattr(dc, "train_classifier", no_training)
    cached, _ = dc.get_classifier(path, offline_tiny_root, cfg, log=lambda _: None)
    assert torch.equal(cached(x), clf(x))
    with pytest.raises(AssertionError, match="reused"):  # other settings -> stale cache -> retrain
        dc.get_classifier(path, offline_tiny_root, {**cfg, "seed": 1}, log=lambda _: None)
    path.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="unreadable"):
        dc.load_classifier(path)


def test_evaluate_checkpoint_scores_reconstructions(tiny_ckpt, tiny_vae, tiny_tensors):
    _, _, te_x, te_y = tiny_tensors
    clf = LookupClassifier()
    # pixel 0 carries the label, so the originals are classified perfectly ...
    x = te_x.clone()
    x[:, 0] = te_y / 10.0
    r = rc.evaluate_checkpoint(tiny_ckpt, clf, x, te_y, prior_samples=6)
    assert r["original_accuracy"] == 1.0 and r["n"] == 64 and r["latent_dim"] == 2
    # ... and the reconstructions exactly as well as the classifier does on reconstruct_means
    recon_pred = dc.predict(clf, reconstruct_means(tiny_vae, x))
    assert r["recon_accuracy"] == pytest.approx(float((recon_pred == te_y).float().mean()))
    assert r["recon_accuracy"] < 1.0  # an untrained decoder cannot write the label pixel
    assert r["agreement"] == pytest.approx(r["recon_accuracy"])
    assert r["prior"]["n"] == 6 and sum(r["prior"]["class_counts"]) == 6


# ------------------------------------------------------------------------------------- figures


def test_image_grid_size_gaps_and_nearest_upscaling():
    imgs = torch.stack([torch.full((784,), v) for v in (0.0, 1.0, 0.5)])
    img = figures.image_grid(imgs, rows=2, cols=2, scale=3, gap=2)
    assert img.size == figures.grid_size(2, 2, 3, 2) == (2 * 84 + 2, 2 * 84 + 2)
    a = np.asarray(img)
    assert (a[:84, :84] == 0).all() and (a[:84, 86:] == 255).all() and (a[86:, :84] == 128).all()
    assert (a[84:86, :] == figures.GAP_GREY).all() and (a[:, 84:86] == figures.GAP_GREY).all()
    one = torch.zeros(1, 784)
    one[0, 28 * 5 + 7] = 1.0  # pixel (row 5, col 7) -> a crisp 3x3 white block, nothing else
    b = np.asarray(figures.image_grid(one, 1, 1, scale=3, gap=2))
    assert b.shape == (84, 84) and (b[15:18, 21:24] == 255).all() and b.sum() == 9 * 255
    with pytest.raises(ValueError):
        figures.image_grid(torch.zeros(5, 784), 2, 2)


def test_reconstruction_grid_puts_originals_over_their_reconstructions(tiny_vae, tiny_tensors):
    x = tiny_tensors[2][:5]
    recon = reconstruct_means(tiny_vae, x)
    img = figures.reconstruction_grid(x, recon, cols=5, scale=2, gap=1)
    assert img.size == figures.grid_size(2, 5, 2, 1)
    a = np.asarray(img).astype(int)
    tile = 56
    for k in range(5):
        top = a[:tile, k * (tile + 1) : k * (tile + 1) + tile][::2, ::2]
        bottom = a[tile + 1 :, k * (tile + 1) : k * (tile + 1) + tile][::2, ::2]
        assert (top == figures.to_uint8(x[k])[0]).all()
        assert (bottom == figures.to_uint8(recon[k])[0]).all()
        assert np.abs(top - bottom).mean() > 10  # an untrained VAE's reconstruction is not the digit
    # a short last block: 3 digits on 2 columns -> 4 rows, the unused cells grey
    c = np.asarray(figures.reconstruction_grid(x[:3], recon[:3], cols=2, scale=1, gap=0))
    assert c.shape == (4 * 28, 2 * 28) and (c[56:, 28:] == figures.GAP_GREY).all()


def test_pick_indices_cycles_through_classes():
    y = torch.tensor([3, 0, 1, 0, 2, 1, 3, 2, 0])
    assert figures.pick_indices(y, 6).tolist() == [1, 2, 4, 0, 3, 5]
    assert figures.pick_indices(y, 100).tolist() == [1, 2, 4, 0, 3, 5, 7, 6, 8]


# ------------------------------------------------------------------------------------------ CLIs


def test_recon_classifier_cli_json_and_table(tmp_path, tiny_ckpt, tiny_vae, offline_tiny_root, capsys):
    from training import data

    clf_path = tmp_path / "artifacts" / "clf.pt"
    args = [str(tiny_ckpt), "--data-root", str(offline_tiny_root), "--classifier", str(clf_path), "--epochs", "2"]
    assert rc.main([*args, "--json", "--prior-samples", "8"]) == 0
    out = json.loads(capsys.readouterr().out)
    clf, meta = dc.load_classifier(clf_path)
    te_x, te_y = data.load_mnist(offline_tiny_root, train=False, expected_md5=data.MNIST_FILES)
    (r,) = out["checkpoints"]
    assert out["classifier"]["test_accuracy"] == pytest.approx(dc.accuracy(clf, te_x, te_y))
    assert r["original_accuracy"] == pytest.approx(dc.accuracy(clf, te_x, te_y))
    assert r["recon_accuracy"] == pytest.approx(dc.accuracy(clf, reconstruct_means(tiny_vae, te_x), te_y))
    assert r["n"] == 64 and r["prior"]["n"] == 8 and len(r["recon_accuracy_per_class"]) == 10

    assert rc.main([*args, str(tmp_path / "missing.pt")]) == 1  # cached classifier, one bad checkpoint
    text = capsys.readouterr().out
    assert "recon(mu)" in text and str(tiny_ckpt) in text and "checkpoint not found" in text
    assert f"{r['recon_accuracy']:.2%}" in text
    assert rc.main([*args, "--min-recon-accuracy", "1.01"]) == 2


def test_figures_cli_writes_both_pngs(tmp_path, tiny_ckpt, tiny_vae, offline_tiny_root, capsys):
    from training import data

    out = tmp_path / "docs"
    assert figures.main([str(tiny_ckpt), "--out", str(out), "--prefix", "tiny_", "--data-root", str(offline_tiny_root)]) == 0
    printed = capsys.readouterr().out
    recon_png, samples_png = out / "tiny_reconstructions.png", out / "tiny_samples.png"
    assert str(recon_png) in printed and str(samples_png) in printed
    with Image.open(recon_png) as im:
        assert im.mode == "L" and im.size == figures.grid_size(2, 16) == (16 * 84 + 15 * 2, 2 * 84 + 2)
        a = np.asarray(im)
    with Image.open(samples_png) as im:
        assert im.size == figures.grid_size(8, 16)
        s = np.asarray(im)
    te_x, te_y = data.load_mnist(offline_tiny_root, train=False, expected_md5=data.MNIST_FILES)
    idx = figures.pick_indices(te_y, 16)
    assert (a[:84:3, :84:3] == figures.to_uint8(te_x[idx[0]])[0]).all()
    assert (a[86::3, :84:3] == figures.to_uint8(reconstruct_means(tiny_vae, te_x[idx[:1]]))[0]).all()
    assert (s[:84:3, :84:3] == figures.to_uint8(prior_sample_means(tiny_vae, 128, seed=0)[0])[0]).all()
    assert figures.main([str(tmp_path / "missing.pt"), "--out", str(out), "--data-root", str(offline_tiny_root)]) == 1


def test_keep_figures_writes_the_readme_pictures(tiny_models_dir, tmp_path):
    """tools.keep_figures: a traversal PNG of every dimension and a ping-pong GIF of 12 frames."""
    from tools import keep_figures

    assert keep_figures.main([str(tiny_models_dir / "default.pt"), "--out", str(tmp_path)]) == 0
    with Image.open(tmp_path / "traversal.png") as im:
        assert im.format == "PNG" and im.width == 9 * 84 + 8 * 2 and im.height >= 8 * 84 + 7 * 2
    with Image.open(tmp_path / "interpolation.gif") as gif:
        assert gif.n_frames == 2 * 12 - 2 and gif.info["loop"] == 0
    with Image.open(tmp_path / "interpolation.png") as im:
        assert im.size == (12 * 84 + 11 * 2, 84)
    assert keep_figures.main([str(tmp_path / "missing.pt"), "--out", str(tmp_path)]) == 1
