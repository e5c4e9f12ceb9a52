"""How a model learnt: the `Dynamics` contract, its validation and its sidecar .npz file (torch-free).

Training records them (training.dynamics) in `<checkpoint stem>.dynamics.npz` beside the checkpoint,
rewritten after every epoch; the atlas carries them as optional `dyn_<field>` arrays
(common.atlas_format), so the app reads them without torch and without the sidecar.

Sizes: E recorded epochs, D latent units, S snapshots, M snapshot codes, P prior draws, R
reconstructed test digits, N the test set the indices refer to. Shapes and dtypes are on the fields
of `Dynamics`. Every row describes the model at the end of that epoch; epochs are numbered across
training stages (a stage started with --init-from continues its parent's count).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from common.fileio import atomic_write_bytes

FORMAT_VERSION = 1  # of the sidecar file; inside an atlas the atlas's own version covers the dyn_ arrays
IMAGE_PIXELS = 784
ACTIVE_THRESHOLD = 0.01  # unit u is active if Cov_x(E_q[z_u]) > 0.01 (Burda et al. 2015), as training.evaluate


class DynamicsError(ValueError):
    """Dynamics arrays that cannot be used; the message says which part is wrong."""


@dataclass(frozen=True)
class Dynamics:
    """Per-epoch test statistics of a training run and snapshots of its model at a dozen epochs.

    Treat as read-only (the app shares one instance between sessions). Test statistics are on the
    fixed-binarised test set (training.evaluate.binarize_fixed, all N digits); snapshots encode the
    grey-level digits, like Atlas.mu, so a snapshot's codes sit on the same map as the atlas's.
    """

    # --- per epoch, row e is the end of epoch epoch[e] ---
    epoch: np.ndarray  # [E] int32: consecutive global epoch numbers, 1..E for a run trained from scratch
    stage: np.ndarray  # [E] int32: training stage, 0 first; an index into Atlas.checkpoint["stages"]
    lr: np.ndarray  # [E] float32: learning rate at the epoch's last step
    train_recon: np.ndarray  # [E] float32: mean reconstruction NLL of the epoch's training batches (nats)
    train_kl: np.ndarray  # [E] float32: their mean KL (nats, without the warm-up weight)
    test_recon: np.ndarray  # [E] float32: test reconstruction NLL, one z sample per digit (nats)
    test_kl: np.ndarray  # [E] float32: test KL (nats); test -ELBO = test_recon + test_kl
    kl_per_dim: np.ndarray  # [E, D] float32: mean over the test set of KL(q(z_u|x) || N(0, 1))
    sigma_mean: np.ndarray  # [E, D] float32: mean over the test set of the posterior sigma exp(logvar / 2)
    mu_variance: np.ndarray  # [E, D] float32: Cov_x(E_q[z_u]), the variance of the posterior means
    active_units: np.ndarray  # [E] int32: units with mu_variance > 0.01
    # --- snapshots: the model at the end of snapshot_epoch[s] (0: the untrained model) ---
    snapshot_epoch: np.ndarray  # [S] int32, increasing
    snapshot_stage: np.ndarray  # [S] int32: the stage those weights belong to
    code_index: np.ndarray  # [M] int32: test-set indices of the snapshot codes (every 5th digit: 0, 5, ...)
    snapshot_mu: np.ndarray  # [S, M, D] float32: posterior means of those digits
    prior_z: np.ndarray  # [P, D] float32: fixed draws z ~ N(0, I), the same at every snapshot
    snapshot_prior: np.ndarray  # [S, P, 784] uint8: pixel means sigmoid(decode(prior_z)) x 255
    recon_index: np.ndarray  # [R] int32: test-set indices of the reconstructed digits (the first 8)
    snapshot_recon: np.ndarray  # [S, R, 784] uint8: pixel means of decode(mu) of those digits x 255
    test_size: int  # N: the whole test set code_index and recon_index point into (also in an atlas of a subset)

    @property
    def num_epochs(self) -> int:
        """E."""
        return int(self.epoch.shape[0])

    @property
    def latent_dim(self) -> int:
        """D."""
        return int(self.kl_per_dim.shape[1])

    def truncated(self, last_epoch: int) -> Dynamics:
        """The same record up to the end of `last_epoch` (rows and snapshots after it dropped)."""
        rows, snaps = self.epoch <= last_epoch, self.snapshot_epoch <= last_epoch
        values = {name: getattr(self, name) for name in FIELDS}
        values.update({name: values[name][rows] for name in EPOCH_FIELDS})
        values.update({name: values[name][snaps] for name in SNAPSHOT_FIELDS})
        return Dynamics(**values)

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """name -> array (test_size as a 0-d int64), keys prefixed, for np.savez."""
        return {prefix + name: np.asarray(getattr(self, name), dtype=np.int64) if name == "test_size"
                else getattr(self, name) for name in FIELDS}

    @classmethod
    def from_arrays(cls, raw: dict[str, np.ndarray], prefix: str = "") -> Dynamics:
        """The inverse of to_arrays; DynamicsError names the missing keys. No cross-checks (see validate)."""
        missing = [prefix + name for name in FIELDS if prefix + name not in raw]
        if missing:
            raise DynamicsError(f"incomplete (missing {', '.join(missing)})")
        size = raw[prefix + "test_size"]
        if size.ndim != 0 or size.dtype.kind not in "iu":
            raise DynamicsError(f"{prefix}test_size must be an integer scalar, got {size.dtype} {list(size.shape)}")
        return cls(**{name: int(size) if name == "test_size" else raw[prefix + name] for name in FIELDS})


FIELDS = tuple(f.name for f in fields(Dynamics))
EPOCH_FIELDS = ("epoch", "stage", "lr", "train_recon", "train_kl", "test_recon", "test_kl", "kl_per_dim",
                "sigma_mean", "mu_variance", "active_units")
SNAPSHOT_FIELDS = ("snapshot_epoch", "snapshot_stage", "snapshot_mu", "snapshot_prior", "snapshot_recon")
# Copied from the checkpoint's history rows: they tie a sidecar to the run that wrote it (training.dynamics).
HISTORY_FIELDS = ("lr", "train_recon", "train_kl", "test_recon", "test_kl")


def _check(array: Any, name: str, shape: tuple[int, ...], kind: str) -> None:
    """Exact shape, dtype kind ('f' float, 'u' unsigned, 'iu' integer) and, for floats, finiteness."""
    if not isinstance(array, np.ndarray):
        raise DynamicsError(f"{name} is not an array")
    if array.shape != shape:
        raise DynamicsError(f"{name} has shape {list(array.shape)}, expected {list(shape)}")
    if array.dtype.kind not in kind:
        raise DynamicsError(f"{name} has dtype {array.dtype}, expected {'a float' if kind == 'f' else 'an integer'} type")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise DynamicsError(f"{name} holds NaN or infinite values")


def _increasing(a: np.ndarray, strict: bool = True) -> bool:
    steps = np.diff(a.astype(np.int64))
    return bool((steps > 0).all() if strict else (steps >= 0).all())


def validate_dynamics(dyn: Dynamics, latent_dim: int | None = None, test_size: int | None = None) -> None:
    """Raise DynamicsError unless every array has the shape, dtype and values the others imply.

    E, D, S, M, P and R come from epoch, kl_per_dim, snapshot_epoch, code_index, prior_z and
    recon_index; latent_dim and test_size, if given, must be the atlas's D and N.
    """
    for name in ("epoch", "kl_per_dim", "snapshot_epoch", "code_index", "prior_z", "recon_index"):
        if not isinstance(getattr(dyn, name), np.ndarray):
            raise DynamicsError(f"{name} is not an array")
    if dyn.epoch.ndim != 1 or dyn.epoch.shape[0] < 1:
        raise DynamicsError(f"epoch must be [E] with E >= 1, got {list(dyn.epoch.shape)}")
    if dyn.kl_per_dim.ndim != 2 or dyn.prior_z.ndim != 2:
        raise DynamicsError("kl_per_dim and prior_z must be 2-d")
    e, d = dyn.epoch.shape[0], dyn.kl_per_dim.shape[1]
    s, m, p, r = dyn.snapshot_epoch.shape[0], dyn.code_index.shape[0], dyn.prior_z.shape[0], dyn.recon_index.shape[0]
    if latent_dim is not None and d != latent_dim:
        raise DynamicsError(f"they describe {d} latent units, the model has {latent_dim}")
    if test_size is not None and dyn.test_size != test_size:
        raise DynamicsError(f"they index a test set of {dyn.test_size} digits, the atlas holds {test_size}")
    specs = [(name, (e,), "iu") for name in ("epoch", "stage", "active_units")]
    specs += [(name, (e,), "f") for name in ("lr", "train_recon", "train_kl", "test_recon", "test_kl")]
    specs += [(name, (e, d), "f") for name in ("kl_per_dim", "sigma_mean", "mu_variance")]
    specs += [("snapshot_epoch", (s,), "iu"), ("snapshot_stage", (s,), "iu"), ("code_index", (m,), "iu"),
              ("snapshot_mu", (s, m, d), "f"), ("prior_z", (p, d), "f"), ("snapshot_prior", (s, p, IMAGE_PIXELS), "u"),
              ("recon_index", (r,), "iu"), ("snapshot_recon", (s, r, IMAGE_PIXELS), "u")]
    for name, shape, kind in specs:
        _check(getattr(dyn, name), name, shape, kind)
    if dyn.snapshot_prior.dtype != np.uint8 or dyn.snapshot_recon.dtype != np.uint8:
        raise DynamicsError("snapshot_prior and snapshot_recon must be uint8 pixel means")
    if dyn.epoch[0] < 1 or not (np.diff(dyn.epoch.astype(np.int64)) == 1).all():
        raise DynamicsError("epoch must count up by one from a number >= 1")
    stage_steps = np.diff(dyn.stage.astype(np.int64))
    if dyn.stage.min() < 0 or (stage_steps < 0).any() or (stage_steps > 1).any():
        raise DynamicsError("stage must start >= 0 and go up by at most one from epoch to epoch")
    if not _increasing(dyn.snapshot_epoch) or s < 1:
        raise DynamicsError("snapshot_epoch must hold at least one epoch and increase")
    if dyn.snapshot_epoch[0] < dyn.epoch[0] - 1 or dyn.snapshot_epoch[-1] > dyn.epoch[-1]:
        raise DynamicsError(f"snapshots span epochs {int(dyn.snapshot_epoch[0])}..{int(dyn.snapshot_epoch[-1])}, "
                            f"outside the recorded {int(dyn.epoch[0]) - 1}..{int(dyn.epoch[-1])}")
    if not _increasing(dyn.snapshot_stage, strict=False) or dyn.snapshot_stage.min() < dyn.stage[0] \
            or dyn.snapshot_stage.max() > dyn.stage[-1]:
        raise DynamicsError("snapshot_stage must be non-decreasing stages of the record")
    if dyn.test_size < 1:
        raise DynamicsError(f"test_size must be >= 1, got {dyn.test_size}")
    for name in ("code_index", "recon_index"):
        index = getattr(dyn, name)
        if index.size and (index.min() < 0 or index.max() >= dyn.test_size or not _increasing(index)):
            raise DynamicsError(f"{name} must be increasing indices into the {dyn.test_size} test digits")
    if (dyn.active_units < 0).any() or (dyn.active_units > d).any():
        raise DynamicsError(f"active_units must be counts in 0..{d}")
    if (dyn.lr <= 0).any() or (dyn.sigma_mean <= 0).any() or (dyn.mu_variance < 0).any():
        raise DynamicsError("lr and sigma_mean must be > 0 and mu_variance >= 0")
    if (dyn.kl_per_dim < -1e-4).any() or (dyn.test_kl < -1e-4).any() or (dyn.train_kl < -1e-4).any():
        raise DynamicsError("KL values must be >= 0")


def save_dynamics(path: str | Path, dyn: Dynamics) -> None:
    """Validate, then write the sidecar atomically as a compressed npz with its format version."""
    validate_dynamics(dyn)
    arrays = {"format_version": np.asarray(FORMAT_VERSION, dtype=np.int64), **dyn.to_arrays()}
    atomic_write_bytes(path, lambda f: np.savez_compressed(f, **arrays))


def read_dynamics(path: str | Path) -> Dynamics:
    """A validated sidecar (allow_pickle=False); DynamicsError for anything that is not one."""
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
            raw = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise DynamicsError(f"{path} is not a readable .npz file ({type(e).__name__}: {e})") from e
    version = int(raw.pop("format_version", -1))
    if version != FORMAT_VERSION:
        raise DynamicsError(f"{path} has dynamics format {version}, this code reads {FORMAT_VERSION}")
    dyn = Dynamics.from_arrays(raw)
    validate_dynamics(dyn)
    return dyn
