"""Inspection tools for trained VAE checkpoints (no training of the VAE itself, no network).

    python -m tools.recon_classifier CHECKPOINT [CHECKPOINT ...] [--json]
        digit-classifier accuracy on the test set and on its reconstructions
    python -m tools.figures CHECKPOINT [--out docs/] [--prefix NAME_]
        reconstructions.png and samples.png (Pillow only)

Shared here: the two deterministic ways of turning a VAE into images, used by both tools.
"""

from __future__ import annotations

from pathlib import Path

import torch

from training.model import VAE

REPO_ROOT: Path = Path(__file__).resolve().parent.parent


@torch.no_grad()
def reconstruct_means(model: VAE, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """x [N, 784] in [0, 1] -> sigmoid(decode(mu(x))) [N, 784] float32 in [0, 1].

    Decodes the posterior MEAN, so the result is deterministic (no reparameterisation noise).
    """
    model.eval()
    out = []
    for start in range(0, len(x), batch_size):
        mu, _ = model.encode(x[start : start + batch_size].float())
        out.append(torch.sigmoid(model.decode(mu)))
    if not out:
        return torch.empty(0, model.config.input_dim)
    return torch.cat(out)


@torch.no_grad()
def prior_sample_means(model: VAE, n: int, seed: int = 0) -> torch.Tensor:
    """n decodes of z ~ N(0, I) drawn with a fixed seed -> pixel means [n, 784] in [0, 1]."""
    model.eval()
    g = torch.Generator(device="cpu").manual_seed(seed)
    z = torch.randn(n, model.latent_dim, generator=g)
    return torch.sigmoid(model.decode(z))


__all__ = ["REPO_ROOT", "reconstruct_means", "prior_sample_means"]
