"""Model, loss, trainer, checkpoints and CLI on tiny synthetic data."""

from __future__ import annotations

import io
import math
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from training import CheckpointError, load_vae
from training.checkpoint import read_checkpoint, resume_path, save_checkpoint, stage_summary, stages_of
from training.config import TrainConfig, parse_args
from training.loss import elbo_terms, gaussian_kl, iwae_nll, kl_weight_at, reconstruction_nll
from training.model import PRESETS, VAE, ModelConfig
from training.train import TrainingDiverged, make_optimizer, selection_score, train

TINY = dict(encoder_hidden=(32,), decoder_hidden=(32,), latent_dim=4)


def tiny_cfg(tmp_path: Path, **kw) -> TrainConfig:
    base = dict(epochs=2, batch_size=32, progress=False, output=str(tmp_path / "m.pt"), warmup_epochs=1.0, **TINY)
    base.update(kw)
    return TrainConfig(**base)


def test_shapes_and_api():
    model = VAE(ModelConfig(**TINY))
    x = torch.rand(5, 784)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (5, 4)
    z = model.reparameterize(mu, logvar)
    assert z.shape == (5, 4)
    logits = model.decode(z)
    assert logits.shape == (5, 784)
    out, mu2, logvar2 = model(x)
    assert out.shape == (5, 784) and torch.equal(mu, mu2)
    # decode works on any leading shape (the IWAE path decodes [k, B, D])
    assert model.decode(torch.zeros(3, 2, 4)).shape == (3, 2, 784)


def test_seed_preset_is_the_original_design():
    m = VAE(PRESETS["seed"])
    linears = [(l.in_features, l.out_features) for l in m.modules() if isinstance(l, torch.nn.Linear)]
    assert linears == [(784, 100), (100, 100), (100, 8), (100, 8), (8, 100), (100, 784)]
    # the log-sigma head: encode returns logvar = 2 * head output
    x = torch.rand(2, 784)
    h = m.encoder(x)
    assert torch.allclose(m.encode(x)[1], 2 * m.log_scale_head(h))
    # no activation after the output layer: logits can be negative (the original's ReLU forbade it)
    assert (m.decode(torch.randn(50, 8)) < 0).any()


def test_kl_matches_torch_distributions():
    torch.manual_seed(0)
    mu, logvar = torch.randn(7, 8) * 2, torch.randn(7, 8)
    ours = gaussian_kl(mu, logvar)
    ref = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(torch.zeros(7, 8), torch.ones(7, 8)))
    assert torch.allclose(ours, ref, atol=1e-5)


def test_bernoulli_reconstruction_is_a_log_likelihood():
    logits = torch.randn(3, 784)
    x = torch.bernoulli(torch.full((3, 784), 0.3))
    ref = -torch.distributions.Bernoulli(logits=logits).log_prob(x).sum(-1)
    assert torch.allclose(reconstruction_nll(logits, x), ref, atol=1e-3)
    mse = reconstruction_nll(logits, x, "mse")
    assert torch.allclose(mse, ((torch.sigmoid(logits) - x) ** 2).sum(-1))


def test_elbo_terms_are_separate_and_weighted():
    torch.manual_seed(0)
    model = VAE(ModelConfig(**TINY))
    x = torch.bernoulli(torch.rand(4, 784))
    torch.manual_seed(1)
    full = elbo_terms(model, x, kl_weight=1.0)
    torch.manual_seed(1)
    half = elbo_terms(model, x, kl_weight=0.5)
    assert full.recon.shape == full.kl.shape == (4,)
    assert torch.allclose(full.loss, (full.recon + full.kl).mean())
    assert torch.allclose(half.loss, (half.recon + 0.5 * half.kl).mean())


def test_iwae_bound_is_tighter_than_elbo():
    torch.manual_seed(0)
    model = VAE(ModelConfig(**TINY)).eval()
    x = torch.bernoulli(torch.rand(8, 784))
    torch.manual_seed(0)
    neg_elbo = torch.stack([elbo_terms(model, x).neg_elbo for _ in range(200)]).mean(0)
    nll = iwae_nll(model, x, k=200, chunk=64)
    assert (nll <= neg_elbo + 1e-3).all()


@pytest.mark.slow
def test_widened_proposal_estimates_the_same_likelihood():
    """With a 1-d latent, log p(x) is a 1-d integral: quadrature gives it exactly. Both the encoder's
    own proposal and a widened one must estimate it; a wrong log-density of the widened proposal would
    be off by log(scale) = 0.69 nats."""
    torch.manual_seed(0)
    model = VAE(ModelConfig(encoder_hidden=(16,), decoder_hidden=(16,), latent_dim=1)).eval()
    with torch.no_grad():
        for p in [*model.decoder_body.parameters(), *model.decoder_out.parameters()]:
            p.mul_(0.1)  # a smooth p(x|z), so that a few thousand samples settle the estimate
    x = torch.bernoulli(torch.full((4, 784), 0.5))
    z = torch.linspace(-10, 10, 20001).unsqueeze(-1)  # [G, 1]
    with torch.no_grad():
        logits = model.decode(z)  # [G, 784]
        log_px_z = -torch.nn.functional.binary_cross_entropy_with_logits(
            logits.unsqueeze(1).expand(-1, 4, -1), x.expand(len(z), -1, -1), reduction="none").sum(-1)  # [G, 4]
    log_joint = log_px_z - 0.5 * (z.pow(2) + math.log(2 * math.pi))
    exact_nll = -(torch.logsumexp(log_joint, dim=0) + math.log(20 / 20000))
    for scale in (1.0, 2.0):
        torch.manual_seed(1)
        est = iwae_nll(model, x, k=20000, chunk=5000, proposal_scale=scale)
        torch.testing.assert_close(est, exact_nll, atol=0.02, rtol=0)


def test_kl_warmup_schedule():
    assert kl_weight_at(0, 10) == pytest.approx(0.1)
    assert kl_weight_at(9, 10) == 1.0 and kl_weight_at(100, 10, beta=2.0) == 2.0
    assert kl_weight_at(0, 0, beta=0.5) == 0.5


@pytest.mark.slow
def test_small_batch_overfits():
    torch.manual_seed(0)
    model = VAE(ModelConfig(encoder_hidden=(64,), decoder_hidden=(64,), latent_dim=4))
    opt = make_optimizer(model, 3e-3)
    x = torch.bernoulli(torch.rand(16, 784))
    first = None
    for _ in range(300):
        terms = elbo_terms(model, x)
        opt.zero_grad()
        terms.loss.backward()
        opt.step()
        first = first if first is not None else terms.loss.item()
    # 784 random bits per image: memorising them takes the loss far below the ~543-nat start
    assert terms.loss.item() < 0.3 * first


def test_weight_decay_shrinks_weights_that_get_no_gradient():
    torch.manual_seed(0)
    model = VAE(ModelConfig(encoder_hidden=(8,), decoder_hidden=(8,), latent_dim=2))
    start = [p.detach().clone() for p in model.parameters()]
    for wd, factor in ((0.0, 1.0), (0.5, 1.0 - 1e-2 * 0.5)):
        with torch.no_grad():
            for p, s in zip(model.parameters(), start):
                p.copy_(s)
        opt = make_optimizer(model, 1e-2, weight_decay=wd)
        for p in model.parameters():
            p.grad = torch.zeros_like(p)  # no signal: only the decay can move a weight
        opt.step()
        for p, s in zip(model.parameters(), start):
            torch.testing.assert_close(p.detach(), s * factor)
    with pytest.raises(ValueError, match="weight_decay"):
        tiny_cfg(Path("unused"), weight_decay=-1.0)


@pytest.mark.slow
def test_train_writes_best_and_resume_checkpoints(tmp_path, tiny_tensors):
    tr_x, _, te_x, _ = tiny_tensors
    cfg = tiny_cfg(tmp_path, epochs=3)
    result = train(cfg, tr_x, te_x, data_md5={"f": "abc"}, log=lambda s: None)
    best = read_checkpoint(result.best_path)
    last = read_checkpoint(resume_path(result.best_path))
    assert len(best["history"]) == 3 and best["kind"] == "best" and "optimizer_state" not in best
    assert last["epoch"] == 3 and "optimizer_state" in last and last["data_md5"] == {"f": "abc"}
    best_epoch = min(best["history"], key=lambda h: h["test_neg_elbo"])["epoch"]
    assert best["epoch"] == best_epoch  # chosen by test ELBO
    assert best["best_selection_score"] == pytest.approx(min(h["test_neg_elbo"] for h in best["history"]))
    model = load_vae(result.best_path)
    assert not model.training and next(model.parameters()).device.type == "cpu"
    assert TrainConfig.from_dict(best["train_config"]).epochs == 3


@pytest.mark.slow
def test_with_beta_the_best_checkpoint_is_chosen_by_the_beta_objective(tmp_path, tiny_tensors):
    """recon + beta x KL, the objective once warm-up is over, picks the best epoch: not the -ELBO,
    which at a large beta prefers the warm-up epochs, when the KL weight was still small."""
    tr_x, _, te_x, _ = tiny_tensors
    result = train(tiny_cfg(tmp_path, epochs=4, beta=8.0, warmup_epochs=2.0), tr_x, te_x, log=lambda s: None)
    best = read_checkpoint(result.best_path)
    objective = {h["epoch"]: h["test_recon"] + 8.0 * h["test_kl"] for h in best["history"]}
    assert best["epoch"] == min(objective, key=objective.get)
    assert best["best_selection_score"] == pytest.approx(min(objective.values()))
    # the rule on an epoch where the two disagree: a warm-up epoch with a good -ELBO but much KL
    warm, late = {"neg_elbo": 120.0, "recon": 100.0, "kl": 20.0}, {"neg_elbo": 130.0, "recon": 125.0, "kl": 5.0}
    cfg8, cfg1 = tiny_cfg(tmp_path, beta=8.0), tiny_cfg(tmp_path)
    assert selection_score(late, cfg8) == 165.0 < selection_score(warm, cfg8) == 260.0
    assert selection_score(warm, cfg1) == 120.0 < selection_score(late, cfg1)


@pytest.mark.slow
def test_training_is_deterministic(tmp_path, tiny_tensors):
    tr_x, _, te_x, _ = tiny_tensors
    a = train(tiny_cfg(tmp_path / "a"), tr_x, te_x, log=lambda s: None)
    b = train(tiny_cfg(tmp_path / "b"), tr_x, te_x, log=lambda s: None)
    sa, sb = load_vae(a.best_path).state_dict(), load_vae(b.best_path).state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.slow
def test_resume_after_kill_equals_uninterrupted(tmp_path, tiny_tensors):
    tr_x, _, te_x, _ = tiny_tensors
    full = train(tiny_cfg(tmp_path / "full", epochs=4), tr_x, te_x, log=lambda s: None)

    steps_per_epoch = math.ceil(len(tr_x) / 32)

    def kill_mid_epoch_3(step: int, model: VAE) -> None:
        if step == 2 * steps_per_epoch + 3:  # inside epoch 3
            raise KeyboardInterrupt

    cfg = tiny_cfg(tmp_path / "killed", epochs=4)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tr_x, te_x, on_step=kill_mid_epoch_3, log=lambda s: None)
    assert read_checkpoint(resume_path(cfg.output_path()))["epoch"] == 2
    resumed = train(tiny_cfg(tmp_path / "killed", epochs=4, resume=True), tr_x, te_x, log=lambda s: None)

    assert resumed.epochs_run == 2
    a, b = load_vae(full.last_path).state_dict(), load_vae(resumed.last_path).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    ha = read_checkpoint(full.best_path)["history"]
    hb = read_checkpoint(resumed.best_path)["history"]
    assert [h["test_neg_elbo"] for h in ha] == [h["test_neg_elbo"] for h in hb]


def test_resume_refuses_changed_settings(tmp_path, tiny_tensors):
    tr_x, _, te_x, _ = tiny_tensors
    train(tiny_cfg(tmp_path, epochs=1), tr_x, te_x, log=lambda s: None)
    with pytest.raises(ValueError, match="lr"):
        train(tiny_cfg(tmp_path, epochs=2, resume=True, lr=0.5), tr_x, te_x, log=lambda s: None)


@pytest.mark.slow
def test_nan_stops_run_and_keeps_last_good_checkpoint(tmp_path, tiny_tensors):
    tr_x, _, te_x, _ = tiny_tensors
    cfg = tiny_cfg(tmp_path, epochs=1)
    train(cfg, tr_x, te_x, log=lambda s: None)
    before = {p: p.read_bytes() for p in (cfg.output_path(), resume_path(cfg.output_path()))}

    def poison(step: int, model: VAE) -> None:
        with torch.no_grad():
            model.mu_head.weight.fill_(float("nan"))

    with pytest.raises(TrainingDiverged, match="epoch 2"):
        train(tiny_cfg(tmp_path, epochs=2, resume=True), tr_x, te_x, on_step=poison, log=lambda s: None)
    assert {p: p.read_bytes() for p in before} == before
    assert not list(tmp_path.glob("*.tmp"))


# --- bad checkpoints -------------------------------------------------------------------------

class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.fixture
def good_ckpt(tmp_path, tiny_tensors) -> Path:
    tr_x, _, te_x, _ = tiny_tensors
    return train(tiny_cfg(tmp_path, epochs=1), tr_x, te_x, log=lambda s: None).best_path


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_vae(tmp_path / "nope.pt")


def test_truncated_checkpoint(tmp_path, good_ckpt):
    bad = tmp_path / "trunc.pt"
    bad.write_bytes(good_ckpt.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated|readable"):
        load_vae(bad)


def test_non_checkpoint_files(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(CheckpointError):
        load_vae(text)
    tensor_only = tmp_path / "tensor.pt"
    torch.save({"weights": torch.zeros(3)}, tensor_only)
    with pytest.raises(CheckpointError, match="not a VAE checkpoint"):
        load_vae(tensor_only)


def test_malicious_pickle_is_refused_not_run(tmp_path, capsys):
    evil = tmp_path / "evil.pt"
    buf = io.BytesIO()
    torch.save({"format_version": 1, "model_config": {}, "model_state": _Evil()}, buf)
    evil.write_bytes(buf.getvalue())
    with pytest.raises(CheckpointError, match="weights-only"):
        load_vae(evil)
    assert "pwned" not in capsys.readouterr().out
    raw_pickle = tmp_path / "raw.pt"
    raw_pickle.write_bytes(pickle.dumps(_Evil(), protocol=2))  # torch's loader warns on newer protocols
    with pytest.raises(CheckpointError):
        load_vae(raw_pickle)
    assert "pwned" not in capsys.readouterr().out


def test_wrong_architecture(tmp_path, good_ckpt):
    ckpt = read_checkpoint(good_ckpt)
    ckpt.pop("format_version")
    ckpt["model_config"] = {**ckpt["model_config"], "latent_dim": 6}
    bad = tmp_path / "wrong.pt"
    save_checkpoint(bad, ckpt)
    with pytest.raises(CheckpointError, match="do not match"):
        load_vae(bad)


def test_cli_flags_map_onto_config():
    cfg = parse_args(["--epochs", "3", "--encoder-hidden", "64", "32", "--no-binarize", "--lr", "0.01", "--preset", "seed"])
    assert cfg.epochs == 3 and cfg.encoder_hidden == (64, 32) and cfg.binarize is False and cfg.lr == 0.01
    assert cfg.model_config().decoder_hidden == (100,) and cfg.model_config().encoder_hidden == (64, 32)
    assert set(vars(parse_args([]))) == set(TrainConfig().to_dict())


TINY_FLAGS = ["--latent-dim", "2", "--encoder-hidden", "16", "--decoder-hidden", "16", "--batch-size", "64"]


def run_cli(argv: list[str], md5: dict[str, str]) -> int:
    """`python -m training ARGV` on the synthetic data: its md5 table, no download source."""
    from training import __main__ as cli

    return cli.main(argv, expected_md5=md5, sources=())


def test_cli_smoke_one_epoch_with_atlas_and_summary(tmp_path, tiny_mnist, capsys, one_torch_thread):
    from common.atlas_format import load_atlas
    from common.paths import atlas_path_for

    root, md5 = tiny_mnist
    out = tmp_path / "models" / "cli.pt"
    rc = run_cli(["--epochs", "1", *TINY_FLAGS, "--data-root", str(root), "--output", str(out), "--no-progress"], md5)
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "already on disk" in captured.out
    atlas = load_atlas(atlas_path_for(out))
    assert atlas.mu.shape == (64, 2) and atlas.tsne.shape == (64, 2) and atlas.images.shape == (64, 784)
    # a 1-epoch run gets a quick final NLL (k = 20 x epochs), not the k=1000 of a full run
    assert atlas.metrics.iw_samples == 20 and math.isfinite(atlas.metrics.nll)
    summary = captured.out.split("\nsummary\n", 1)[1]
    for figure in ("test -ELBO", "reconstruction", "KL", "test NLL", "k=20", "active units", "t-SNE", str(out)):
        assert figure in summary, figure
    assert f"{atlas.metrics.nll:.2f}" in summary


def test_final_eval_samples_rule():
    assert [TrainConfig(epochs=e).final_eval_samples() for e in (1, 3, 50, 250)] == [20, 60, 1000, 1000]
    assert TrainConfig(eval_iw_samples=7).final_eval_samples() == 7  # an explicit k is obeyed
    assert TrainConfig(eval_iw_samples=0).final_eval_samples() == 0
    # the run's length decides, not how much of it this invocation ran: a resumed run ends like the whole one
    assert TrainConfig(epochs=250, resume=True).final_eval_samples() == 1000


def test_default_output_is_a_named_file_in_runs_never_models():
    from training.config import REPO_ROOT

    cfg = parse_args([])
    assert cfg.output_path() == REPO_ROOT / "runs" / "default-z8-elbo-beta1-lr0.001-e250-seed0.pt"
    assert parse_args(["--preset", "seed", "--epochs", "3", "--iw-samples", "5"]).output_path().name == \
        "seed-z8-iwae5-beta1-lr0.001-e3-seed0.pt"
    assert parse_args(["--init-from", "models/default.pt", "--lr", "1e-4"]).output_path().name.startswith("ft-default-elbo-")


def test_an_existing_checkpoint_is_never_overwritten_without_force(tmp_path, tiny_mnist, capsys, one_torch_thread):
    root, md5 = tiny_mnist
    out = tmp_path / "m.pt"
    flags = ["--epochs", "1", *TINY_FLAGS, "--data-root", str(root), "--output", str(out), "--no-progress", "--no-atlas"]
    assert run_cli(flags, md5) == 0
    kept = out.read_bytes()
    capsys.readouterr()
    assert run_cli(flags, md5) == 1
    err = capsys.readouterr().err
    assert f"{out} exists: --resume to continue that run, --force to replace it" in err and err.count("\n") == 1
    assert out.read_bytes() == kept
    assert run_cli([*flags, "--resume", "--epochs", "2"], md5) == 0  # resuming the same run may write it
    assert read_checkpoint(out)["history"][-1]["epoch"] == 2
    assert run_cli([*flags, "--force", "--seed", "3"], md5) == 0  # asked for: replaced
    assert read_checkpoint(out)["train_config"]["seed"] == 3


def test_a_killed_runs_resume_file_is_not_overwritten_either(tmp_path, tiny_mnist, capsys, one_torch_thread):
    """A run killed before its first best checkpoint leaves only the .last.pt: a fresh run with the same
    --output must not overwrite it, and --resume of another run's file is refused before any data is read."""
    root, md5 = tiny_mnist
    out = tmp_path / "m.pt"
    flags = ["--epochs", "1", *TINY_FLAGS, "--data-root", str(root), "--output", str(out), "--no-progress", "--no-atlas"]
    assert run_cli(flags, md5) == 0
    out.unlink()
    last = resume_path(out)
    kept = last.read_bytes()
    capsys.readouterr()
    assert run_cli(flags, md5) == 1
    assert f"{last} exists: --resume to continue that run" in capsys.readouterr().err
    assert run_cli([*flags, "--resume", "--lr", "0.5"], md5) == 1
    captured = capsys.readouterr()
    assert "is another run (it differs in lr)" in captured.err and captured.err.count("\n") == 1
    assert "MNIST" not in captured.out  # refused before the data was looked at
    assert last.read_bytes() == kept and not out.exists()


@pytest.mark.parametrize("problem", ["output folder is a file", "data root is a file", "init-from missing"])
def test_everyday_file_problems_fail_before_training_with_one_line(tmp_path, tiny_mnist, capsys, problem):
    root, md5 = tiny_mnist
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out, data_root, extra = tmp_path / "m.pt", str(root), []
    if problem == "output folder is a file":
        out, expected = blocker / "m.pt", "cannot write to the output folder"
    elif problem == "data root is a file":
        data_root, expected = str(blocker), "is a file; give the folder"
    else:
        extra, expected = ["--init-from", str(tmp_path / "nope.pt")], "no such checkpoint"
    before = sorted(p.name for p in tmp_path.iterdir())
    assert run_cli(["--epochs", "1", *TINY_FLAGS, "--data-root", data_root, "--output", str(out), *extra], md5) == 1
    captured = capsys.readouterr()
    assert expected in captured.err and captured.err.startswith("error: ") and captured.err.count("\n") == 1
    assert "Traceback" not in captured.err and "training " not in captured.out  # refused before training started
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders: the mode bits stop only other users")
def test_a_read_only_output_folder_fails_before_training(tmp_path, tiny_mnist, capsys):
    root, md5 = tiny_mnist
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert run_cli(["--epochs", "1", *TINY_FLAGS, "--data-root", str(root), "--output", str(folder / "m.pt")], md5) == 1
    finally:
        folder.chmod(0o755)
    captured = capsys.readouterr()
    assert "cannot write to the output folder" in captured.err and captured.err.count("\n") == 1
    assert "training " not in captured.out and list(folder.iterdir()) == []


def test_a_full_disk_mid_run_is_one_line_and_keeps_saved_checkpoints(tmp_path, tiny_mnist, capsys, monkeypatch,
                                                                     one_torch_thread):
    import errno

    root, md5 = tiny_mnist
    out = tmp_path / "m.pt"
    flags = ["--epochs", "1", *TINY_FLAGS, "--data-root", str(root), "--output", str(out), "--no-progress", "--no-atlas"]
    assert run_cli(flags, md5) == 0
    saved = {p.name: p.read_bytes() for p in tmp_path.glob("m.*")}

    def disk_fills_mid_write(obj, f, *args, **kwargs):  # the real atomic write path, up to the file's write()
        f.write(b"the first bytes fit")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_fills_mid_write)
    # the dynamics sidecar, written first each epoch, meets the full disk the same way
    monkeypatch.setattr(np, "savez_compressed", lambda f, **arrays: disk_fills_mid_write(arrays, f))
    capsys.readouterr()
    assert run_cli([*flags, "--resume", "--epochs", "3"], md5) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert "No space left on device" in err and "checkpoints already saved are intact" in err
    # the checkpoints of epoch 1 are byte-identical and the half-written temp file is gone
    assert {p.name: p.read_bytes() for p in tmp_path.glob("m.*")} == saved
    assert not list(tmp_path.glob("*.tmp"))
    monkeypatch.undo()
    assert run_cli([*flags, "--resume", "--epochs", "3"], md5) == 0  # and --resume carries on once there is space
    assert read_checkpoint(out)["history"][-1]["epoch"] == 3
    from common.dynamics_format import read_dynamics
    from common.paths import dynamics_path_for

    assert read_dynamics(dynamics_path_for(out)).epoch.tolist() == [1, 2, 3]


def test_tsne_progress_bar_reaches_the_end_and_changes_nothing(capsys):
    from sklearn.manifold import TSNE

    from training.tsne import perplexity_for, tsne_2d

    mu = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)
    shown = tsne_2d(mu, progress=True, max_iter=300)  # 300, not the atlas's 1000: the same code path, faster
    bar = capsys.readouterr().err
    assert "t-SNE" in bar and "300/300" in bar
    silent = TSNE(n_components=2, perplexity=perplexity_for(60), init="pca", random_state=0, max_iter=300)
    assert np.array_equal(shown, silent.fit_transform(mu.astype(np.float64)).astype(np.float32))


def test_evaluate_cli_json(tmp_path, tiny_mnist, good_ckpt, capsys):
    import json

    from training import evaluate

    root, md5 = tiny_mnist
    assert evaluate.main([str(good_ckpt), "--iw-samples", "20", "--json", "--data-root", str(root)],
                         expected_md5=md5, sources=()) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["n"] == 64 and m["iw_samples"] == 20 and len(m["kl_per_dim"]) == 4
    assert m["neg_elbo"] == pytest.approx(m["recon"] + m["kl"])
    assert m["nll"] <= m["neg_elbo"] + 1.0  # the IWAE estimate is (nearly always) the tighter one
    assert evaluate.main([str(tmp_path / "missing.pt"), "--data-root", str(root)], expected_md5=md5, sources=()) == 1
    assert "not found" in capsys.readouterr().err


@pytest.mark.slow
def test_fine_tune_with_iwae_from_a_checkpoint(tmp_path, tiny_tensors, good_ckpt):
    tr_x, _, te_x, _ = tiny_tensors
    start = load_vae(good_ckpt).state_dict()
    cfg = tiny_cfg(tmp_path / "ft", epochs=2, init_from=str(good_ckpt), iw_samples=3, latent_dim=7, warmup_epochs=0.0)
    result = train(cfg, tr_x, te_x, log=lambda s: None)
    best = read_checkpoint(result.best_path)
    # the architecture (4-d) comes from the init checkpoint, not from the flags (7-d)
    assert best["model_config"]["latent_dim"] == 4
    h = best["history"]
    assert all("test_iwae" in row for row in h)
    # chosen by the test IWAE bound, the objective being trained
    assert best["epoch"] == min(h, key=lambda r: r["test_iwae"])["epoch"]
    assert best["best_selection_score"] == pytest.approx(min(r["test_iwae"] for r in h))
    tuned = load_vae(result.best_path).state_dict()
    assert any(not torch.equal(start[k], tuned[k]) for k in start)
    # the fine-tuned checkpoint remembers the stage it started from, and a second fine-tune both
    parent = read_checkpoint(good_ckpt)
    assert best["ancestors"] == [stage_summary(parent)] and stage_summary(parent)["objective"] == "ELBO"
    cfg2 = tiny_cfg(tmp_path / "ft2", epochs=1, init_from=str(result.best_path), iw_samples=2, warmup_epochs=0.0)
    again = read_checkpoint(train(cfg2, tr_x, te_x, log=lambda s: None).best_path)
    assert [(s["objective"], s["epochs"]) for s in stages_of(again)] == [
        ("ELBO", len(parent["history"])), ("IWAE bound (k=3)", 2), ("IWAE bound (k=2)", 1)]
