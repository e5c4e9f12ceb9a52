"""VAE objectives. Every function returns per-example values [B] so callers choose the reduction.

Notation: x [B, 784] in [0, 1] (binary when dynamically binarised), logits [B, 784], mu/logvar [B, D].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from training.model import VAE

_LOG_2PI = math.log(2.0 * math.pi)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) per dimension, [B, D].

    Closed form from Kingma & Welling 2014, appendix B: -1/2 (1 + log s^2 - mu^2 - s^2).
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def reconstruction_nll(logits: torch.Tensor, x: torch.Tensor, likelihood: str = "bernoulli") -> torch.Tensor:
    """Reconstruction term summed over pixels, [B].

    "bernoulli": -log p(x|z) in nats (BCE with logits, numerically stable for any logit).
    "mse": the original design's squared error of sigmoid(logits) against x (not a likelihood).
    """
    if likelihood == "bernoulli":
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
    if likelihood == "mse":
        return (torch.sigmoid(logits) - x).pow(2).sum(-1)
    raise ValueError(f"unknown likelihood {likelihood!r}")


@dataclass
class LossTerms:
    """loss: scalar to minimise (batch mean); recon/kl: per-example terms [B], detached."""

    loss: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor

    @property
    def neg_elbo(self) -> torch.Tensor:
        return self.recon + self.kl


def elbo_terms(model: VAE, x: torch.Tensor, kl_weight: float = 1.0, likelihood: str | None = None) -> LossTerms:
    """One-sample negative ELBO: recon + kl_weight * KL, averaged over the batch for `loss`.

    kl_weight carries beta and the warm-up factor; the returned kl is the unweighted KL.
    """
    logits, mu, logvar = model(x)
    recon = reconstruction_nll(logits, x, likelihood or model.config.likelihood)
    kl = gaussian_kl(mu, logvar).sum(-1)
    loss = (recon + kl_weight * kl).mean()
    return LossTerms(loss=loss, recon=recon.detach(), kl=kl.detach())


def log_weights(model: VAE, x: torch.Tensor, k: int, kl_weight: float = 1.0,
                proposal_scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Importance log-weights log p(x|z_k) + w * (log p(z_k) - log r(z_k|x)) for k samples, [k, B].

    The proposal r is the encoder's q(z|x) = N(mu, sigma^2) with sigma multiplied by proposal_scale
    (1: q itself). Also returns mu, logvar [B, D]. With w = 1 and scale 1 these are the IWAE weights
    (Burda et al. 2015, eq. 8).
    """
    mu, logvar = model.encode(x)
    std = torch.exp(0.5 * logvar) * proposal_scale
    eps = torch.randn((k, *mu.shape), dtype=mu.dtype, device=mu.device)
    z = mu + std * eps  # [k, B, D]
    logits = model.decode(z)  # [k, B, 784]
    log_px_z = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)
    log_pz = -0.5 * (z.pow(2) + _LOG_2PI).sum(-1)
    log_rz_x = -0.5 * (eps.pow(2) + _LOG_2PI + logvar + 2.0 * math.log(proposal_scale)).sum(-1)
    return log_px_z + kl_weight * (log_pz - log_rz_x), mu, logvar


def iwae_terms(model: VAE, x: torch.Tensor, k: int, kl_weight: float = 1.0) -> LossTerms:
    """Importance-weighted bound with k samples as a training objective (Burda et al. 2015).

    loss = -mean_B [logsumexp_k log w - log k]; recon/kl are reported from the analytic ELBO parts
    of the same batch so the progress bar shows comparable numbers.
    """
    lw, mu, logvar = log_weights(model, x, k, kl_weight)
    bound = torch.logsumexp(lw, dim=0) - math.log(k)
    kl = gaussian_kl(mu, logvar).sum(-1).detach()
    return LossTerms(loss=-bound.mean(), recon=(-bound.detach() - kl_weight * kl), kl=kl)


@torch.no_grad()
def iwae_nll(model: VAE, x: torch.Tensor, k: int, chunk: int = 250, proposal_scale: float = 1.0) -> torch.Tensor:
    """Importance-sampled estimate of -log p(x) with k samples (an upper bound on the NLL), [B].

    Samples are drawn in chunks so [chunk, B, 784] logits fit in memory; log-mean-exp is exact.
    Any proposal gives an unbiased estimate of p(x), hence an upper bound on -log p(x) in
    expectation; a proposal_scale > 1 widens q(z|x), which is tighter when the encoder's posteriors
    are too narrow (the usual case: q under-covers the tails of the true posterior).
    """
    parts = []
    for start in range(0, k, chunk):
        lw, _, _ = log_weights(model, x, min(chunk, k - start), proposal_scale=proposal_scale)
        parts.append(lw)
    lw_all = torch.cat(parts, dim=0)
    return -(torch.logsumexp(lw_all, dim=0) - math.log(k))


def kl_weight_at(step: int, warmup_steps: int, beta: float = 1.0) -> float:
    """Beta times a linear KL warm-up from 0 to 1 over `warmup_steps` optimizer steps (Bowman et al. 2016)."""
    if warmup_steps <= 0:
        return beta
    return beta * min(1.0, (step + 1) / warmup_steps)
