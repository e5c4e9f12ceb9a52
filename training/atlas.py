"""The latent atlas: what the app needs about the encoded test set, computed once per checkpoint.

Stored as `<checkpoint stem>.atlas.npz` beside the checkpoint, plain arrays only (loaded with
np.load(allow_pickle=False)):
  mu, logvar [N, D] float32     posterior of each test digit (grey-level input, deterministic)
  labels [N] uint8, images [N, 784] uint8   the test digits themselves, for display
  pca [N, 2] float32, pca_mean [D], pca_components [2, D], pca_explained [2]   exact projection
  tsne [N, 2] float32           t-SNE of mu (scikit-learn, fixed seed): 1-2 minutes, hence offline
  kl_per_dim [D], mu_variance [D]   per-dimension KL and Cov_x(E_q[z_u]) (active units)
  checkpoint_sha256 (str)       ties the atlas to the exact checkpoint bytes
  metrics_json (str)            the evaluation of training.evaluate (JSON)
  checkpoint_json (str)         model config, train config, best epoch, epochs trained (JSON)
  w__<name>                     the model's weights as float32 arrays: the app runs the small MLP in
                                NumPy and never imports torch (torch's import alone is ~2 s of a cold start)
Reading and writing live in training.atlas_io, which does not import torch.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.atlas_io import WEIGHT_PREFIX, atlas_path_for, save_atlas
from training.checkpoint import model_from_checkpoint, read_checkpoint, stages_of
from training.evaluate import evaluate
from training.fileio import file_sha256
from training.model import VAE


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


def tsne_2d(mu: np.ndarray, seed: int = 0, verbose: bool = True) -> np.ndarray:
    """2-D t-SNE of mu [N, D] with scikit-learn (PCA init, fixed seed), float32 [N, 2]."""
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, max(2.0, (len(mu) - 1) / 3.0)))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, verbose=1 if verbose else 0)
    return tsne.fit_transform(mu.astype(np.float64)).astype(np.float32)


def checkpoint_summary(ckpt: dict[str, Any]) -> dict[str, Any]:
    """What the app shows about a checkpoint, as plain JSON-able values."""
    stages = stages_of(ckpt)  # the training stages behind these weights, oldest first
    return {
        "model_config": dict(ckpt["model_config"]),
        "train_config": dict(ckpt.get("train_config") or {}),
        "best_epoch": stages[-1]["best_epoch"],
        "epochs_trained": stages[-1]["epochs"],
        "best_test_neg_elbo": ckpt.get("best_test_neg_elbo"),
        "stages": stages,
    }


def reusable_parts(path: str | Path, checkpoint_sha256: str) -> dict[str, Any]:
    """t-SNE and metrics of an existing atlas file made for the same checkpoint bytes, else {}.

    Both are deterministic for a checkpoint (fixed seeds), so reusing them gives the same atlas
    as recomputing, minus minutes of t-SNE and IWAE; works on atlases of older formats too.
    """
    path = Path(path)
    if not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as z:
        if "checkpoint_sha256" not in z.files or str(z["checkpoint_sha256"]) != checkpoint_sha256:
            return {}
        parts = {k: z[k] for k in ("tsne", "metrics_json") if k in z.files}
    if "metrics_json" in parts:
        parts["metrics"] = json.loads(str(parts.pop("metrics_json")))
    return parts


def build_atlas(model: VAE, images: torch.Tensor, labels: torch.Tensor, checkpoint_sha256: str = "",
                iw_samples: int = 1000, progress: bool = True,
                checkpoint_info: dict[str, Any] | None = None, reuse: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything in the module docstring for images [N, 784] in [0, 1] and labels [N].

    `reuse` may hold "tsne" and "metrics" from reusable_parts(), which are then not recomputed.
    """
    say = print if progress else (lambda *_: None)
    reuse = reuse or {}
    model = model.eval()
    mu, logvar = encode_all(model, images)
    if "metrics" in reuse:
        metrics = reuse["metrics"]
        say("atlas: reusing the evaluation of the existing atlas (same checkpoint)")
    else:
        say(f"atlas: evaluating on {len(images)} test digits (IWAE k={iw_samples})")
        metrics = evaluate(model, images, iw_samples=iw_samples, progress=progress)
    if "tsne" in reuse and len(reuse["tsne"]) == len(mu):
        tsne = reuse["tsne"]
        say("atlas: reusing the t-SNE of the existing atlas (same checkpoint)")
    else:
        t0 = time.perf_counter()
        say("atlas: t-SNE of the posterior means (runs once, here, so the app never has to)")
        tsne = tsne_2d(mu, verbose=progress)
        say(f"atlas: t-SNE took {time.perf_counter() - t0:.0f} s")
    return {
        "mu": mu,
        "logvar": logvar,
        "labels": labels.numpy().astype(np.uint8),
        "images": np.clip(np.rint(images.numpy() * 255.0), 0, 255).astype(np.uint8),
        **pca_2d(mu),
        "tsne": tsne,
        "kl_per_dim": np.asarray(metrics["kl_per_dim"], dtype=np.float32),
        "mu_variance": np.asarray(metrics["mu_variance"], dtype=np.float32),
        "checkpoint_sha256": np.asarray(checkpoint_sha256),
        "metrics_json": metrics,
        "checkpoint_json": checkpoint_info or {"model_config": model.config.to_dict()},
        **{WEIGHT_PREFIX + k: v.detach().cpu().numpy().astype(np.float32) for k, v in model.state_dict().items()},
    }


def write_atlas_for(checkpoint: str | Path, images: torch.Tensor, labels: torch.Tensor,
                    iw_samples: int = 1000, progress: bool = True, reuse: bool = False) -> Path:
    """Build and save the atlas of `checkpoint`; returns its path. With reuse, keep the t-SNE and
    metrics of an existing atlas of the same checkpoint bytes."""
    ckpt = read_checkpoint(checkpoint)
    model = model_from_checkpoint(ckpt, checkpoint).eval()
    path = atlas_path_for(checkpoint)
    sha = file_sha256(checkpoint)
    parts = reusable_parts(path, sha) if reuse else {}
    atlas = build_atlas(model, images, labels, sha, iw_samples=iw_samples, progress=progress,
                        checkpoint_info=checkpoint_summary(ckpt), reuse=parts)
    save_atlas(path, atlas)
    return path
