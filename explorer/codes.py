"""Encoding, decoding and sampling of latent codes as NumPy in, NumPy out.

Images are float32 [28, 28] (or [B, 28, 28]) in [0, 1]; codes are float32 [D] (or [B, D]).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from training import VAE
from training.loss import gaussian_kl

SLIDER_LIMIT = 4.0  # sliders span +-4: 99.99 % of the N(0, 1) prior mass per dimension


@torch.no_grad()
def decode(model: VAE, z: np.ndarray) -> np.ndarray:
    """Pixel means sigmoid(decode(z)): z [D] -> [28, 28], z [B, D] -> [B, 28, 28]."""
    zt = torch.as_tensor(np.asarray(z, dtype=np.float32))
    img = torch.sigmoid(model.decode(zt)).numpy()
    return img.reshape(*zt.shape[:-1], 28, 28)


@torch.no_grad()
def encode(model: VAE, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """image [28, 28] in [0, 1] -> (mu [D], sigma [D]) of q(z|x)."""
    x = torch.as_tensor(np.asarray(image, dtype=np.float32).reshape(1, 784))
    mu, logvar = model.encode(x)
    return mu[0].numpy(), torch.exp(0.5 * logvar[0]).numpy()


@torch.no_grad()
def posterior_samples(model: VAE, mu: np.ndarray, sigma: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Decodes of n draws z = mu + sigma * eps, eps ~ N(0, I) (fixed seed): [n, 28, 28]."""
    rng = np.random.default_rng(seed)
    z = mu[None, :] + sigma[None, :] * rng.standard_normal((n, len(mu))).astype(np.float32)
    return decode(model, z.astype(np.float32))


@torch.no_grad()
def elbo_split(model: VAE, image: np.ndarray, samples: int = 64, seed: int = 0) -> dict[str, float]:
    """Negative ELBO of image [28, 28] in nats, split into reconstruction and KL.

    Reconstruction is the Bernoulli cross-entropy of the grey levels, averaged over `samples` seeded
    draws of z ~ q(z|x); KL is analytic. (On grey levels this is a cross-entropy, not a likelihood.)
    """
    x = torch.as_tensor(np.asarray(image, dtype=np.float32).reshape(1, 784))
    mu, logvar = model.encode(x)
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn((samples, mu.shape[1]), generator=g)
    logits = model.decode(mu + torch.exp(0.5 * logvar) * eps)
    recon = F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1).mean().item()
    kl = gaussian_kl(mu, logvar).sum().item()
    return {"recon": recon, "kl": kl, "neg_elbo": recon + kl}


def class_gaussian(mu: np.ndarray, labels: np.ndarray, digit: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and covariance [D, D] of the posterior means mu [N, D] of one digit class."""
    codes = mu[labels == digit]
    if len(codes) < 2:
        raise ValueError(f"the atlas has fewer than 2 test digits of class {digit}")
    return codes.mean(0), np.cov(codes, rowvar=False).reshape(mu.shape[1], mu.shape[1])


def sample_class(mean: np.ndarray, cov: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw [D] from N(mean, cov), clipped to the slider range."""
    return clip_code(rng.multivariate_normal(mean, cov, method="eigh"))


def sample_prior(dim: int, rng: np.random.Generator) -> np.ndarray:
    """One draw [D] from the prior N(0, I), clipped to the slider range."""
    return clip_code(rng.standard_normal(dim))


def clip_code(z: np.ndarray) -> np.ndarray:
    """Clip to +-SLIDER_LIMIT (a slider raises on values outside its range): float32 [D]."""
    return np.clip(np.asarray(z, dtype=np.float64), -SLIDER_LIMIT, SLIDER_LIMIT).astype(np.float32)
