"""Training dynamics: what is recorded, that recording changes nothing trained, and that the record
continues exactly across --resume and --init-from. Tiny models on synthetic data, in tmp_path."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from common.dynamics_format import FIELDS, Dynamics, read_dynamics
from common.paths import dynamics_path_for
from training.checkpoint import model_from_checkpoint, read_checkpoint, resume_path
from training.config import TrainConfig, parse_args
from training.dynamics import PRIOR_DRAWS, PRIOR_SEED, make_probes, snapshot_due, start_recording
from training.evaluate import binarize_fixed, latent_stats
from training.model import VAE
from training.train import train

TINY = {"encoder_hidden": (32,), "decoder_hidden": (32,), "latent_dim": 4}


def quiet(line: str) -> None:
    """A log that drops its lines."""


def tiny_cfg(folder: Path, **kw) -> TrainConfig:
    base = {"epochs": 2, "batch_size": 32, "progress": False, "output": str(folder / "m.pt"), "warmup_epochs": 1.0, **TINY}
    base.update(kw)
    return TrainConfig(**base)


def assert_same_dynamics(a: Dynamics, b: Dynamics) -> None:
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert np.array_equal(x, y) and np.asarray(x).dtype == np.asarray(y).dtype, name


def kill_at(epoch: int, step_in_epoch: int, n_train: int, batch_size: int = 32):
    """An on_step hook that raises KeyboardInterrupt inside `epoch` (1-based), as a kill would."""
    steps = math.ceil(n_train / batch_size)

    def hook(step: int, model: VAE) -> None:
        if step == (epoch - 1) * steps + step_in_epoch:
            raise KeyboardInterrupt
    return hook


# Every test here but the first trains tiny models for a few epochs: the slow tier.
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def test_snapshot_rule_gives_a_dozen_epochs_for_the_shipped_recipe():
    stage1 = [e for e in range(1, 251) if snapshot_due(e, 250)]
    stage2 = [e for e in range(251, 291) if snapshot_due(e, 290)]
    assert stage1 == [1, 2, 3, 5, 10, 20, 50, 100, 200, 250] and stage2 == [290]
    assert [e for e in (30, 300, 500, 1000, 2000, 4000, 5000) if snapshot_due(e, 10**6)] == [500, 1000, 2000, 5000]


def test_a_run_records_every_epoch_and_its_snapshots(tmp_path, tiny_tensors):
    tr_x, _, te_x, _ = tiny_tensors
    result = train(tiny_cfg(tmp_path, epochs=4), tr_x, te_x, log=quiet)
    assert result.dynamics_path == dynamics_path_for(result.best_path)
    dyn = read_dynamics(result.dynamics_path)
    history = read_checkpoint(result.last_path)["history"]
    assert dyn.epoch.tolist() == [1, 2, 3, 4] and dyn.stage.tolist() == [0] * 4
    for key in ("train_recon", "train_kl", "test_recon", "test_kl", "lr"):
        assert np.array_equal(getattr(dyn, key), np.float32([h[key] for h in history])), key
    assert dyn.snapshot_epoch.tolist() == [0, 1, 2, 3, 4] and dyn.snapshot_stage.tolist() == [0] * 5
    # fixed probes: every 5th test digit, the first 8, 16 prior draws of their own seeded generator
    assert dyn.code_index.tolist() == list(range(0, 64, 5)) and dyn.recon_index.tolist() == list(range(8))
    expected_z = torch.randn(PRIOR_DRAWS, 4, generator=torch.Generator().manual_seed(PRIOR_SEED))
    assert np.array_equal(dyn.prior_z, expected_z.numpy()) and dyn.test_size == 64
    assert dyn.snapshot_mu.dtype == np.float32 and dyn.snapshot_prior.dtype == dyn.snapshot_recon.dtype == np.uint8

    # the last epoch's numbers are those of the evaluation code, on the model as it was then
    model = model_from_checkpoint(read_checkpoint(result.last_path)).eval()
    x_test = binarize_fixed(te_x)
    ref = latent_stats(model, x_test)
    np.testing.assert_allclose(dyn.kl_per_dim[-1], ref["kl_per_dim"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dyn.mu_variance[-1], ref["mu_variance"], rtol=1e-5, atol=1e-7)
    assert dyn.active_units[-1] == ref["active_units"]
    np.testing.assert_allclose(dyn.kl_per_dim.sum(1), dyn.test_kl, rtol=1e-4)  # the same test set as the ELBO's
    with torch.no_grad():
        _, logvar = model.encode(x_test)
        np.testing.assert_allclose(dyn.sigma_mean[-1], torch.exp(0.5 * logvar).mean(0).numpy(), rtol=1e-5)
        grey_mu, _ = model.encode(te_x[dyn.code_index])  # snapshots encode the grey-level digits, as the atlas
        assert np.array_equal(dyn.snapshot_mu[-1], grey_mu.numpy())
        prior = torch.sigmoid(model.decode(expected_z)).mul(255).round().to(torch.uint8).numpy()
        recon = torch.sigmoid(model.decode(model.encode(te_x[:8])[0])).mul(255).round().to(torch.uint8).numpy()
    assert np.array_equal(dyn.snapshot_prior[-1], prior) and np.array_equal(dyn.snapshot_recon[-1], recon)
    # epoch 0 is the untrained model: the weights seed 0 makes
    torch.manual_seed(0)
    with torch.no_grad():
        assert np.array_equal(dyn.snapshot_mu[0], VAE(model.config).encode(te_x[dyn.code_index])[0].numpy())


def test_recording_changes_nothing_that_is_trained(tmp_path, tiny_tensors):
    """Bit-identical weights, optimizer state and history with and without recording, for an ELBO stage
    and an IWAE fine-tune (whose reparameterisation noise comes from the global RNG)."""
    tr_x, _, te_x, _ = tiny_tensors
    runs = {}
    for name, on in (("with", True), ("without", False)):
        first = train(tiny_cfg(tmp_path / name / "s1", epochs=3, dynamics=on), tr_x, te_x, log=quiet)
        second = train(tiny_cfg(tmp_path / name / "s2", epochs=2, dynamics=on, init_from=str(first.best_path),
                                iw_samples=2, warmup_epochs=0.0), tr_x, te_x, log=quiet)
        assert (first.dynamics_path is not None) == on and dynamics_path_for(second.best_path).exists() == on
        runs[name] = [read_checkpoint(p) for p in (first.best_path, first.last_path, second.best_path, second.last_path)]
    for a, b in zip(runs["with"], runs["without"]):
        assert a["model_state"].keys() == b["model_state"].keys()
        assert all(torch.equal(a["model_state"][k], b["model_state"][k]) for k in a["model_state"])
        timeless = [[{k: v for k, v in row.items() if k != "seconds"} for row in c["history"]] for c in (a, b)]
        assert timeless[0] == timeless[1] and a["epoch"] == b["epoch"]
        if "optimizer_state" in a:
            sa, sb = a["optimizer_state"]["state"], b["optimizer_state"]["state"]
            assert all(torch.equal(sa[i][k], sb[i][k]) for i in sa for k in sa[i])


def test_the_recorder_leaves_the_global_rng_and_train_mode_alone(tiny_tensors):
    """The whole-run test above cannot see a draw from the global RNG between epochs (every epoch reseeds
    it), so this one checks the recorder draws none at all."""
    _, _, te_x, _ = tiny_tensors
    torch.manual_seed(5)
    model = VAE(TrainConfig(**TINY).model_config()).train()
    before = torch.random.get_rng_state()
    recorder = start_recording(model, te_x, binarize_fixed(te_x), Path("unused.pt"), epochs=3, log=quiet)
    assert recorder is not None
    recorder.record_epoch(model, 1, {"lr": 1e-3, "train_recon": 1.0, "train_kl": 1.0, "test_recon": 1.0, "test_kl": 1.0})
    assert torch.equal(before, torch.random.get_rng_state()) and model.training
    assert make_probes(te_x, 4).prior_z.shape == (PRIOR_DRAWS, 4)


def test_resume_records_what_the_uninterrupted_run_records(tmp_path, tiny_tensors):
    tr_x, _, te_x, _ = tiny_tensors
    full = train(tiny_cfg(tmp_path / "full", epochs=4), tr_x, te_x, log=quiet)
    cfg = tiny_cfg(tmp_path / "killed", epochs=4)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tr_x, te_x, on_step=kill_at(3, 2, len(tr_x)), log=quiet)
    assert read_dynamics(dynamics_path_for(cfg.output_path())).epoch.tolist() == [1, 2]
    resumed = train(tiny_cfg(tmp_path / "killed", epochs=4, resume=True), tr_x, te_x, log=quiet)
    assert_same_dynamics(read_dynamics(full.dynamics_path), read_dynamics(resumed.dynamics_path))


def test_resume_cuts_a_record_that_ran_ahead_of_the_resume_file(tmp_path, tiny_tensors):
    """Killed between the epoch's writes: the sidecar (written first) holds epoch 3, the .last.pt epoch 2."""
    tr_x, _, te_x, _ = tiny_tensors
    full = train(tiny_cfg(tmp_path / "full", epochs=4), tr_x, te_x, log=quiet)
    cfg = tiny_cfg(tmp_path / "killed", epochs=4)
    last = resume_path(cfg.output_path())
    saved: dict[str, bytes] = {}
    steps = math.ceil(len(tr_x) / 32)

    def keep_epoch_2_then_die_in_4(step: int, model: VAE) -> None:
        if step == 2 * steps:  # first step of epoch 3: .last.pt is still epoch 2's
            saved["last"] = last.read_bytes()
        if step == 3 * steps:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, tr_x, te_x, on_step=keep_epoch_2_then_die_in_4, log=quiet)
    last.write_bytes(saved["last"])
    assert read_dynamics(dynamics_path_for(cfg.output_path())).num_epochs == 3 and read_checkpoint(last)["epoch"] == 2
    resumed = train(tiny_cfg(tmp_path / "killed", epochs=4, resume=True), tr_x, te_x, log=quiet)
    assert_same_dynamics(read_dynamics(full.dynamics_path), read_dynamics(resumed.dynamics_path))


@pytest.mark.parametrize("problem", ["sidecar missing", "another run's sidecar"])
def test_a_record_that_cannot_be_continued_is_not_continued_with_a_hole(tmp_path, tiny_tensors, problem):
    tr_x, _, te_x, _ = tiny_tensors
    cfg = tiny_cfg(tmp_path / "run", epochs=2)
    train(cfg, tr_x, te_x, log=quiet)
    sidecar = dynamics_path_for(cfg.output_path())
    if problem == "sidecar missing":
        sidecar.unlink()
    else:
        other = train(tiny_cfg(tmp_path / "other", epochs=3, seed=7), tr_x, te_x, log=quiet)
        sidecar.write_bytes(other.dynamics_path.read_bytes())
    before = sidecar.read_bytes() if sidecar.exists() else None
    logs: list[str] = []
    result = train(tiny_cfg(tmp_path / "run", epochs=3, resume=True), tr_x, te_x, log=logs.append)
    assert result.dynamics_path is None and any("dynamics: not recorded for this run" in line for line in logs)
    assert (sidecar.read_bytes() if sidecar.exists() else None) == before


def test_init_from_continues_the_parents_record(tmp_path, tiny_tensors):
    tr_x, _, te_x, _ = tiny_tensors
    parent = train(tiny_cfg(tmp_path / "s1", epochs=2), tr_x, te_x, log=quiet)
    stage2 = {"epochs": 3, "init_from": str(parent.best_path), "iw_samples": 2, "warmup_epochs": 0.0, "lr": 3e-4}
    child = train(tiny_cfg(tmp_path / "s2", **stage2), tr_x, te_x, log=quiet)
    dyn, before = read_dynamics(child.dynamics_path), read_dynamics(parent.dynamics_path)
    assert dyn.epoch.tolist() == [1, 2, 3, 4, 5] and dyn.stage.tolist() == [0, 0, 1, 1, 1]
    assert dyn.snapshot_epoch.tolist() == [0, 1, 2, 3, 5] and dyn.snapshot_stage.tolist() == [0, 0, 0, 1, 1]
    assert_same_dynamics(dyn.truncated(2), before)  # the parent's record, unchanged
    assert np.array_equal(dyn.lr[2:], np.float32([h["lr"] for h in read_checkpoint(child.best_path)["history"]]))

    # and a killed fine-tune, resumed, records the same
    cfg = tiny_cfg(tmp_path / "s2k", **stage2)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tr_x, te_x, on_step=kill_at(2, 1, len(tr_x)), log=quiet)
    resumed = train(tiny_cfg(tmp_path / "s2k", **stage2, resume=True), tr_x, te_x, log=quiet)
    assert_same_dynamics(dyn, read_dynamics(resumed.dynamics_path))


def test_init_from_a_checkpoint_without_a_record_numbers_on_from_its_epochs(tmp_path, tiny_tensors):
    tr_x, _, te_x, _ = tiny_tensors
    parent = train(tiny_cfg(tmp_path / "s1", epochs=2, dynamics=False), tr_x, te_x, log=quiet)
    assert not dynamics_path_for(parent.best_path).exists()
    logs: list[str] = []
    child = train(tiny_cfg(tmp_path / "s2", epochs=2, init_from=str(parent.best_path)), tr_x, te_x, log=logs.append)
    dyn = read_dynamics(child.dynamics_path)
    assert dyn.epoch.tolist() == [3, 4] and dyn.stage.tolist() == [1, 1]
    # the weights it started from are a snapshot at the parent's last epoch, in the new stage
    assert dyn.snapshot_epoch.tolist() == [2, 3, 4] and dyn.snapshot_stage.tolist() == [1, 1, 1]
    assert any("is not continued (no m.dynamics.npz)" in line for line in logs)


def test_no_dynamics_flag(tmp_path, tiny_tensors):
    assert parse_args(["--no-dynamics"]).dynamics is False and parse_args([]).dynamics is True
    tr_x, _, te_x, _ = tiny_tensors
    result = train(tiny_cfg(tmp_path, epochs=1, dynamics=False), tr_x, te_x, log=quiet)
    assert result.dynamics_path is None and not dynamics_path_for(result.best_path).exists()
