"""Encoding, decoding and sampling of latent codes, NumPy in, NumPy out (no torch in the app).

Images are float32 [28, 28] (or [B, 28, 28]) in [0, 1]; codes are float32 [D] (or [B, D]).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer.numpy_vae import NumpyVAE

SLIDER_LIMIT = 4.0  # sliders span +-4: 99.99 % of the N(0, 1) prior mass per dimension


def sigmoid(x: np.ndarray) -> np.ndarray:
    # exp(-|x|) never overflows; the two branches are the same function.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(np.float32)


def decode_pixels(model: NumpyVAE, z: np.ndarray) -> np.ndarray:
    """Pixel means sigmoid(logits(z)) in [0, 1]: z [D] -> [28, 28], z [B, D] -> [B, 28, 28]."""
    z = np.asarray(z, dtype=np.float32)
    return sigmoid(model.decode_logits(z)).reshape(*z.shape[:-1], 28, 28)


def encode_mu_sigma(model: NumpyVAE, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """image [28, 28] in [0, 1] -> (mu [D], sigma [D]) of q(z|x) (sigma, not logvar)."""
    mu, logvar = model.encode_mu_logvar(np.asarray(image, dtype=np.float32).reshape(1, 784))
    return mu[0], np.exp(0.5 * logvar[0]).astype(np.float32)


def posterior_samples(model: NumpyVAE, mu: np.ndarray, sigma: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Decodes of n draws z = mu + sigma * eps, eps ~ N(0, I) (fixed seed): [n, 28, 28]."""
    rng = np.random.default_rng(seed)
    z = mu[None, :] + sigma[None, :] * rng.standard_normal((n, len(mu)))
    return decode_pixels(model, z.astype(np.float32))


def gaussian_kl(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per dimension (Kingma & Welling 2014, appendix B)."""
    return 0.5 * (mu**2 + np.exp(logvar) - 1.0 - logvar)


@dataclass(frozen=True)
class ElboSplit:
    """The negative ELBO of one image in nats and its two terms: neg_elbo = recon + kl."""

    recon: float
    kl: float

    @property
    def neg_elbo(self) -> float:
        return self.recon + self.kl


def elbo_split(model: NumpyVAE, image: np.ndarray, samples: int = 64, seed: int = 0) -> ElboSplit:
    """Negative ELBO of image [28, 28] in nats, split into reconstruction and KL.

    Reconstruction is the Bernoulli cross-entropy of the grey levels, averaged over `samples` seeded
    draws of z ~ q(z|x); KL is analytic. (On grey levels this is a cross-entropy, not a likelihood.)
    """
    x = np.asarray(image, dtype=np.float32).reshape(1, 784)
    mu, logvar = model.encode_mu_logvar(x)
    eps = np.random.default_rng(seed).standard_normal((samples, mu.shape[1])).astype(np.float32)
    logits = model.decode_logits(mu + np.exp(0.5 * logvar) * eps)
    # BCE with logits: softplus(l) - x * l, with softplus(l) = logaddexp(0, l) (stable for any l).
    recon = float((np.logaddexp(0.0, logits) - x * logits).sum(-1).mean())
    return ElboSplit(recon=recon, kl=float(gaussian_kl(mu, logvar).sum()))


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


def class_means(mu: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The mean posterior mean of each digit class: mu [N, D], labels [N] in 0..9 -> float32 [10, D]."""
    mu = np.asarray(mu, dtype=np.float64)
    return np.stack([mu[labels == d].mean(0) for d in range(10)]).astype(np.float32)
