"""The latent atlas of a checkpoint: what the app needs about the encoded test set, computed once.

The file's layout, its version and its validation live in common.atlas_format (torch-free, so the
app reads atlases without torch); this module computes the arrays: encode the test set, exact PCA,
t-SNE (training.tsne, minutes, hence offline) and the evaluation (training.evaluate), and it
carries the training dynamics recorded beside the checkpoint (training.dynamics).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.atlas_format import Atlas, AtlasError, Dynamics, read_atlas_file, save_atlas
from common.fileio import file_sha256
from common.records import CheckpointSummary, Metrics, Stage
from common.paths import atlas_path_for
from training.checkpoint import model_from_checkpoint, read_checkpoint, selection_score_of, stages_of
from training.dynamics import followed_digits, read_checkpoint_dynamics
from training.evaluate import evaluate
from training.model import VAE
from training.tsne import tsne_2d


@torch.no_grad()
def encode_all(model: VAE, images: torch.Tensor, batch_size: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """images [N, 784] in [0, 1] -> (mu, logvar), each float32 [N, D]."""
    mus, logvars = [], []
    for start in range(0, len(images), batch_size):
        mu, logvar = model.encode(images[start : start + batch_size].float())
        mus.append(mu)
        logvars.append(logvar)
    return torch.cat(mus).numpy().astype(np.float32), torch.cat(logvars).numpy().astype(np.float32)


def pca_2d(mu: np.ndarray) -> dict[str, np.ndarray]:
    """Exact 2-D PCA of mu [N, D] (SVD); keeps mean and components so new points project the same way."""
    mean = mu.mean(0)
    _, s, vt = np.linalg.svd(mu - mean, full_matrices=False)
    # Fix each component's sign (largest |loading| positive) so re-runs don't mirror the map.
    signs = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(1)])
    vt = vt * signs[:, None]
    components = vt[:2]
    explained = (s[:2] ** 2) / max(float((s**2).sum()), 1e-12)
    return {
        "pca": ((mu - mean) @ components.T).astype(np.float32),
        "pca_mean": mean.astype(np.float32),
        "pca_components": components.astype(np.float32),
        "pca_explained": explained.astype(np.float32),
    }


def checkpoint_summary(ckpt: dict[str, Any]) -> CheckpointSummary:
    """What the app shows about a checkpoint (read by common.records)."""
    stages = stages_of(ckpt)  # the training stages behind these weights, oldest first
    return CheckpointSummary(
        model_config=dict(ckpt["model_config"]),
        train_config=dict(ckpt.get("train_config") or {}),
        best_epoch=stages[-1]["best_epoch"],
        epochs_trained=stages[-1]["epochs"],
        best_selection_score=selection_score_of(ckpt),
        stages=tuple(Stage.from_dict(s) for s in stages),
    )


def reusable_parts(path: str | Path, checkpoint_sha256: str) -> dict[str, Any]:
    """t-SNE, metrics and training dynamics of an existing atlas file made for the same checkpoint
    bytes, else {} ("dynamics" only where it has them).

    t-SNE and metrics are deterministic for a checkpoint (fixed seeds), so reusing them gives the same
    atlas as recomputing, minus minutes of t-SNE and IWAE; the dynamics cannot be recomputed at all
    once the training's sidecar is gone. An unreadable old file just means "recompute".
    """
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        old = read_atlas_file(path)
    except AtlasError:
        return {}
    if old.checkpoint_sha256 != checkpoint_sha256:
        return {}
    parts: dict[str, Any] = {"tsne": old.tsne, "metrics": old.metrics}
    if old.dynamics is not None:
        parts["dynamics"] = old.dynamics
    return parts


def build_atlas(model: VAE, images: torch.Tensor, labels: torch.Tensor, checkpoint_sha256: str,
                iw_samples: int = 1000, progress: bool = True,
                checkpoint_info: CheckpointSummary | None = None, reuse: dict[str, Any] | None = None,
                dynamics: Dynamics | None = None, keep: np.ndarray | None = None) -> Atlas:
    """The Atlas of `model` over images [N, 784] in [0, 1] with labels [N], carrying `dynamics`.

    `keep` [K] (increasing indices into the N) makes an atlas of those digits only; the metrics
    still evaluate all N. `reuse` may hold "tsne" and "metrics" from reusable_parts(), which are
    then not recomputed.
    """
    say = print if progress else (lambda *_: None)
    reuse = reuse or {}
    model = model.eval()
    all_images = images
    if keep is not None:
        images, labels = images[torch.from_numpy(keep).long()], labels[torch.from_numpy(keep).long()]
        say(f"atlas: keeping {len(keep)} of the {len(all_images)} test digits")
    mu, logvar = encode_all(model, images)
    if "metrics" in reuse:
        metrics = reuse["metrics"]
        say("atlas: reusing the evaluation of the existing atlas (same checkpoint)")
    else:
        say(f"atlas: evaluating on {len(all_images)} test digits (IWAE k={iw_samples})")
        metrics = Metrics.from_dict(evaluate(model, all_images, iw_samples=iw_samples, progress=progress))
    if "tsne" in reuse and len(reuse["tsne"]) == len(mu):
        tsne = reuse["tsne"]
        say("atlas: reusing the t-SNE of the existing atlas (same checkpoint)")
    else:
        t0 = time.perf_counter()
        say("atlas: t-SNE of the posterior means (runs once, here, so the app never has to)")
        tsne = tsne_2d(mu, progress=progress)
        metrics = replace(metrics, tsne_seconds=time.perf_counter() - t0)
        say(f"atlas: t-SNE took {metrics.tsne_seconds:.0f} s")
    return Atlas(
        mu=mu, logvar=logvar,
        labels=labels.numpy().astype(np.uint8),
        images=np.clip(np.rint(images.numpy() * 255.0), 0, 255).astype(np.uint8),
        **pca_2d(mu),
        tsne=np.asarray(tsne, dtype=np.float32),
        kl_per_dim=np.asarray(metrics.kl_per_dim, dtype=np.float32),
        mu_variance=np.asarray(metrics.mu_variance, dtype=np.float32),
        checkpoint_sha256=checkpoint_sha256,
        metrics=metrics,
        checkpoint=checkpoint_info or CheckpointSummary(model_config=model.config.to_dict()),
        weights={k: v.detach().cpu().numpy().astype(np.float32) for k, v in model.state_dict().items()},
        dynamics=dynamics,
        test_index=None if keep is None else np.asarray(keep, dtype=np.int32),
    )


def atlas_dynamics(checkpoint: str | Path, ckpt: dict[str, Any], test_size: int, old_atlas_dynamics: Dynamics | None,
                   say: Callable[[str], None]) -> Dynamics | None:
    """The dynamics an atlas of `checkpoint` (read as `ckpt`) over `test_size` digits carries: its
    training sidecar's, else those of the existing atlas of the same checkpoint bytes, else none."""
    dyn, why = read_checkpoint_dynamics(checkpoint, ckpt)
    if dyn is not None and dyn.test_size != test_size:
        dyn, why = None, f"they were recorded on {dyn.test_size} test digits, the atlas has {test_size}"
    if dyn is None and old_atlas_dynamics is not None:
        say(f"atlas: keeping the training dynamics of the existing atlas (same checkpoint; {why})")
        return old_atlas_dynamics
    if dyn is None:
        say(f"atlas: no training dynamics ({why})")
    else:
        say(f"atlas: training dynamics of {dyn.num_epochs} epochs, {len(dyn.snapshot_epoch)} snapshots")
    return dyn


def write_atlas_for(checkpoint: str | Path, images: torch.Tensor, labels: torch.Tensor,
                    iw_samples: int = 1000, progress: bool = True, reuse: bool = False,
                    subset: bool | None = None) -> Atlas:
    """Build the atlas of `checkpoint` over the test images [N, 784] and labels [N], save it as
    atlas_path_for(checkpoint) and return it. With reuse, keep the t-SNE and metrics of an existing
    atlas of the same checkpoint bytes. With subset (None: as the checkpoint was trained, its
    --atlas-subset), keep only the digits the training dynamics follow (dynamics.followed_digits).

    The training dynamics come from the checkpoint's .dynamics.npz sidecar; without one (a fresh
    clone: sidecars are not committed) those of an existing atlas of the same checkpoint bytes are
    kept, with or without reuse, since nothing can recompute them.
    """
    ckpt = read_checkpoint(checkpoint)
    model = model_from_checkpoint(ckpt, checkpoint).eval()
    path = atlas_path_for(checkpoint)
    sha = file_sha256(checkpoint)
    old = reusable_parts(path, sha)
    parts = {k: v for k, v in old.items() if k != "dynamics"} if reuse else {}
    say = print if progress else (lambda *_: None)
    dynamics = atlas_dynamics(checkpoint, ckpt, len(images), old.get("dynamics"), say)
    if subset is None:
        subset = bool((ckpt.get("train_config") or {}).get("atlas_subset", False))
    keep = followed_digits(len(images)) if subset else None
    atlas = build_atlas(model, images, labels, sha, iw_samples=iw_samples, progress=progress,
                        checkpoint_info=checkpoint_summary(ckpt), reuse=parts, dynamics=dynamics, keep=keep)
    save_atlas(path, atlas)
    return atlas
