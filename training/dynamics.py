"""Recording how the VAE learns: per-epoch test statistics and snapshots, beside the checkpoint.

The contract and its file are common.dynamics_format (torch-free); this module measures the model
and keeps the record going across --resume and --init-from:

- every epoch: the history row's losses, and on the fixed-binarised test set the KL and mean
  posterior sigma per unit, Cov_x(E_q[z_u]) and the active units;
- at the snapshot epochs (`snapshot_due`) and for the starting weights: the posterior means of every
  5th test digit, and the pixel means of 16 fixed prior draws and of the reconstructions of the
  first 8 test digits.

Recording never changes what is trained: it runs under no_grad in eval mode (train mode restored),
draws no random numbers at all (its prior draws come from a private generator made once), and
still forks the global RNG around the model calls, so that even a future sampling layer could not
shift the training stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.dynamics_format import (
    HISTORY_FIELDS,
    Dynamics,
    DynamicsError,
    read_dynamics,
)
from common.paths import dynamics_path_for
from training.checkpoint import stages_of
from training.evaluate import ACTIVE_THRESHOLD
from training.loss import gaussian_kl
from training.model import VAE

CODE_STRIDE = 5  # snapshot codes: test digits 0, 5, 10, ... (2,000 of MNIST's 10,000)
MAX_CODES = 2000
RECON_DIGITS = 8  # reconstructions of test digits 0..7 (MNIST: 7 2 1 0 4 1 4 9)
PRIOR_DRAWS = 16
PRIOR_SEED = 20251203  # of the private generator behind the prior draws; never the training streams'


def snapshot_due(epoch: int, stage_last_epoch: int) -> bool:
    """Whether the end of global `epoch` gets a snapshot: epochs 1, 2, 3, 5, 10, 20, 50, 100, 200,
    500, 1000, ... (1, 2 and 5 times a power of ten, and 3), and the last epoch of every stage.
    With the starting weights (epoch 0) the shipped default has 12: 0 1 2 3 5 10 20 50 100 200 250 290."""
    if epoch == stage_last_epoch or epoch == 3:
        return True
    if epoch < 1:
        return False
    while epoch % 10 == 0:
        epoch //= 10
    return epoch in (1, 2, 5)


@dataclass(frozen=True)
class Probes:
    """The fixed inputs of every snapshot: what is encoded and decoded, and where it came from."""

    code_images: torch.Tensor  # [M, 784] grey-level test digits code_index, on the model's device
    recon_images: torch.Tensor  # [R, 784] grey-level test digits recon_index
    prior_z: torch.Tensor  # [P, D] z ~ N(0, I) from the private generator
    code_index: np.ndarray  # [M] int32
    recon_index: np.ndarray  # [R] int32
    test_size: int  # N


def probe_indices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(code_index [M], recon_index [R]) int32: the test digits of N whose codes and reconstructions
    the snapshots follow."""
    return np.arange(0, n, CODE_STRIDE, dtype=np.int32)[:MAX_CODES], np.arange(min(RECON_DIGITS, n), dtype=np.int32)


def followed_digits(n: int) -> np.ndarray:
    """int32 [K], increasing: every test digit of N the dynamics follow (the union of probe_indices);
    what an atlas written with --atlas-subset keeps."""
    return np.union1d(*probe_indices(n)).astype(np.int32)


def make_probes(test_images: torch.Tensor, latent_dim: int) -> Probes:
    """Probes over grey-level test_images [N, 784] in [0, 1] (the atlas encodes these, not a binarisation)."""
    n = len(test_images)
    code_index, recon_index = probe_indices(n)
    # A private CPU generator: the prior draws are the same on every device, and the global RNG is untouched.
    g = torch.Generator(device="cpu").manual_seed(PRIOR_SEED)
    prior_z = torch.randn(PRIOR_DRAWS, latent_dim, generator=g)
    device = test_images.device
    return Probes(test_images[torch.from_numpy(code_index).long().to(device)].float(),
                  test_images[torch.from_numpy(recon_index).long().to(device)].float(),
                  prior_z.to(device), code_index, recon_index, n)


@contextmanager
def _quiet_eval(model: VAE) -> Iterator[None]:
    """no_grad and eval mode inside a forked global RNG; the model's train mode is restored afterwards."""
    was_training = model.training
    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
        model.eval()
        try:
            yield
        finally:
            model.train(was_training)


def posterior_stats(model: VAE, x: torch.Tensor, batch_size: int = 1000) -> dict[str, Any]:
    """Per-unit statistics of q(z|x) over x [N, 784]: kl_per_dim, sigma_mean, mu_variance float32 [D]
    and active_units (as training.evaluate.latent_stats: Cov_x(E_q[z_u]) > 0.01)."""
    with _quiet_eval(model):
        mus, kls, sigmas = [], [], []
        for start in range(0, len(x), batch_size):
            mu, logvar = model.encode(x[start : start + batch_size])
            mus.append(mu)
            kls.append(gaussian_kl(mu, logvar))
            sigmas.append(torch.exp(0.5 * logvar))
        mu_all = torch.cat(mus)
        activity = mu_all.var(0, unbiased=False)
        out = {"kl_per_dim": torch.cat(kls).mean(0), "sigma_mean": torch.cat(sigmas).mean(0), "mu_variance": activity}
        stats: dict[str, Any] = {k: v.cpu().numpy().astype(np.float32) for k, v in out.items()}
    stats["active_units"] = int((stats["mu_variance"] > ACTIVE_THRESHOLD).sum())
    return stats


def _pixels(logits: torch.Tensor) -> np.ndarray:
    """Bernoulli logits [..., 784] -> pixel means as uint8 0..255."""
    return torch.sigmoid(logits).mul(255.0).round().clamp(0, 255).to(torch.uint8).cpu().numpy()


def take_snapshot(model: VAE, probes: Probes) -> dict[str, np.ndarray]:
    """mu float32 [M, D] of the code digits, prior pixel means uint8 [P, 784], reconstructions uint8 [R, 784]."""
    with _quiet_eval(model):
        mu, _ = model.encode(probes.code_images)
        recon_mu, _ = model.encode(probes.recon_images)
        return {"mu": mu.cpu().numpy().astype(np.float32), "prior": _pixels(model.decode(probes.prior_z)),
                "recon": _pixels(model.decode(recon_mu))}


def _float32(values: list[Any]) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).astype(np.float32)


def history_agrees(dyn: Dynamics, rows: np.ndarray, history: list[dict[str, Any]]) -> bool:
    """True if the record's rows `rows` hold exactly (as float32) the checkpoint history's values:
    how a sidecar is tied to the run that wrote it (another run, even another seed, differs)."""
    if len(rows) != len(history):
        return False
    try:
        return all(np.array_equal(getattr(dyn, key)[rows], _float32([h[key] for h in history])) for key in HISTORY_FIELDS)
    except (KeyError, TypeError, ValueError):
        return False


def dynamics_of_checkpoint(dyn: Dynamics, ckpt: dict[str, Any]) -> tuple[Dynamics | None, str]:
    """`dyn` cut to the run behind checkpoint `ckpt` (its history's last epoch), or None and why not.

    The last stage's rows must start with the checkpoint's history (a sidecar may run ahead: the
    best checkpoint of a killed run, a sidecar written just before the kill); earlier stages must
    have the epochs the checkpoint's stages say.
    """
    stages = stages_of(ckpt)
    own = len(stages) - 1
    history = list(ckpt.get("history") or [])
    if not history:
        return None, "the checkpoint has no history"
    if int(dyn.stage.max()) > own:
        return None, f"they record {int(dyn.stage.max()) + 1} training stages, the checkpoint has {own + 1}"
    rows = np.flatnonzero(dyn.stage == own)
    if len(rows) < len(history):
        return None, f"they hold {len(rows)} epochs of the last stage, the checkpoint {len(history)}"
    rows = rows[: len(history)]
    if not history_agrees(dyn, rows, history):
        return None, "their losses are not the checkpoint's history (another run)"
    for s in range(own):
        planned, recorded = stages[s].get("epochs"), int((dyn.stage == s).sum())
        if recorded and isinstance(planned, int) and recorded != planned:
            return None, f"they hold {recorded} epochs of stage {s + 1}, the checkpoint says {planned}"
    return dyn.truncated(int(dyn.epoch[rows[-1]])), ""


def read_checkpoint_dynamics(path: str | Path, ckpt: dict[str, Any]) -> tuple[Dynamics | None, str]:
    """The sidecar of checkpoint file `path` (already read as `ckpt`) cut to its run, or None and why not."""
    sidecar = dynamics_path_for(path)
    if not sidecar.is_file():
        return None, f"no {sidecar.name}"
    try:
        dyn = read_dynamics(sidecar)
    except DynamicsError as e:
        return None, str(e)
    found, why = dynamics_of_checkpoint(dyn, ckpt)
    return found, why and f"{sidecar.name} does not belong to {Path(path).name}: {why}"


class DynamicsRecorder:
    """Accumulates a run's Dynamics: `record_epoch` after each epoch, `dynamics()` for the file.

    `base` is the record this run continues (a parent stage's, or this run's own before a --resume),
    `offset` the global number of this stage's epoch 0 and `stage_last_epoch` that of its last epoch.
    """

    def __init__(self, probes: Probes, x_stats: torch.Tensor, stage: int, offset: int, stage_last_epoch: int,
                 base: Dynamics | None = None) -> None:
        self.probes, self.x_stats = probes, x_stats
        self.stage, self.offset, self.stage_last_epoch = stage, offset, stage_last_epoch
        self.rows: dict[str, list[Any]] = {name: [] for name in (*HISTORY_FIELDS, "epoch", "stage", "kl_per_dim",
                                                                 "sigma_mean", "mu_variance", "active_units")}
        self.snaps: dict[str, list[Any]] = {"epoch": [], "stage": [], "mu": [], "prior": [], "recon": []}
        if base is not None:
            for name in self.rows:
                self.rows[name] = list(getattr(base, name))
            for key, name in (("epoch", "snapshot_epoch"), ("stage", "snapshot_stage"), ("mu", "snapshot_mu"),
                              ("prior", "snapshot_prior"), ("recon", "snapshot_recon")):
                self.snaps[key] = list(getattr(base, name))

    @property
    def has_snapshots(self) -> bool:
        return bool(self.snaps["epoch"])

    def snapshot(self, model: VAE, epoch: int) -> None:
        """Snapshot `model` as the state at the end of global `epoch` (0: before the first step)."""
        for key, value in take_snapshot(model, self.probes).items():
            self.snaps[key].append(value)
        self.snaps["epoch"].append(epoch)
        self.snaps["stage"].append(self.stage)

    def record_epoch(self, model: VAE, epoch: int, row: dict[str, Any]) -> None:
        """After this stage's epoch `epoch` (1-based, as in the history row `row`): statistics, maybe a snapshot."""
        global_epoch = self.offset + epoch
        for key in HISTORY_FIELDS:
            self.rows[key].append(float(row[key]))
        self.rows["epoch"].append(global_epoch)
        self.rows["stage"].append(self.stage)
        for key, value in posterior_stats(model, self.x_stats).items():
            self.rows[key].append(value)
        if snapshot_due(global_epoch, self.stage_last_epoch):
            self.snapshot(model, global_epoch)

    def dynamics(self) -> Dynamics:
        """Everything recorded so far as the contract (shapes in common.dynamics_format.Dynamics)."""
        r, s, p = self.rows, self.snaps, self.probes
        d = int(p.prior_z.shape[1])

        def as_int(values: list[int]) -> np.ndarray:
            return np.asarray(values, dtype=np.int32)

        def stack(values: list[np.ndarray], shape: tuple[int, ...], dtype: type) -> np.ndarray:
            return np.stack(values).astype(dtype) if values else np.zeros((0, *shape), dtype)

        return Dynamics(
            epoch=as_int(r["epoch"]), stage=as_int(r["stage"]), active_units=as_int(r["active_units"]),
            **{key: _float32(r[key]) for key in HISTORY_FIELDS},
            **{key: stack(r[key], (d,), np.float32) for key in ("kl_per_dim", "sigma_mean", "mu_variance")},
            snapshot_epoch=as_int(s["epoch"]), snapshot_stage=as_int(s["stage"]),
            code_index=p.code_index, snapshot_mu=stack(s["mu"], (len(p.code_index), d), np.float32),
            prior_z=p.prior_z.cpu().numpy().astype(np.float32),
            snapshot_prior=stack(s["prior"], (len(p.prior_z), 784), np.uint8),
            recon_index=p.recon_index, snapshot_recon=stack(s["recon"], (len(p.recon_index), 784), np.uint8),
            test_size=p.test_size,
        )


def _same_probes(dyn: Dynamics, probes: Probes) -> bool:
    return (dyn.test_size == probes.test_size and np.array_equal(dyn.code_index, probes.code_index)
            and np.array_equal(dyn.recon_index, probes.recon_index)
            and np.array_equal(dyn.prior_z, probes.prior_z.cpu().numpy().astype(np.float32)))


def start_recording(model: VAE, test_images: torch.Tensor, x_stats: torch.Tensor, output: Path, epochs: int, *,
                    parent: tuple[Path, dict[str, Any]] | None = None, resume_state: dict[str, Any] | None = None,
                    log: Callable[[str], None] = print) -> DynamicsRecorder | None:
    """The recorder of a run writing checkpoint `output` for `epochs` epochs, with its starting weights
    snapshot taken if the record has none; None if a resumed run's record cannot be continued.

    test_images [N, 784] are the grey-level test digits (snapshots), x_stats [N, 784] the fixed
    binarisation the test ELBO uses (statistics). `parent` is the --init-from (path, checkpoint):
    its sidecar's record is continued (epochs numbered after its last one, the stage number one up).
    With `resume_state` (the .last.pt being resumed) this run's own sidecar is continued, cut to the
    epoch resumed from; if it is missing or another run's, this run records nothing rather than a
    record with a hole.
    """
    probes = make_probes(test_images, model.latent_dim)
    stage = len(stages_of(parent[1])) if parent is not None else 0
    base: Dynamics | None = None
    offset = 0
    if resume_state is not None:
        done = int(resume_state["epoch"])
        found, why = read_checkpoint_dynamics(output, resume_state)
        if found is not None and not _same_probes(found, probes):
            found, why = None, "it was recorded on another test set"
        if found is None:
            log(f"dynamics: not recorded for this run ({why}; they cannot be continued after epoch {done})")
            return None
        base = found
        offset = int(base.epoch[base.stage == stage][0]) - 1
    elif parent is not None:
        parent_path, parent_ckpt = parent
        found, why = read_checkpoint_dynamics(parent_path, parent_ckpt)
        if found is not None and not _same_probes(found, probes):
            found, why = None, "they were recorded on another test set"
        if found is not None:
            base, offset = found, int(found.epoch[-1])
        else:
            offset = sum(int(s.get("epochs") or 0) for s in stages_of(parent_ckpt))
            log(f"dynamics: the record of {parent_path.name} is not continued ({why}); this stage's starts after epoch {offset}")
    recorder = DynamicsRecorder(probes, x_stats, stage, offset, offset + epochs, base)
    if not recorder.has_snapshots:
        recorder.snapshot(model, offset)  # the starting weights: the untrained model of a run from scratch
    return recorder
