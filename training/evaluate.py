"""Score a checkpoint on the MNIST test set, dynamically binarised with a fixed seed.

    python -m training.evaluate CHECKPOINT [--iw-samples K] [--json]

Reports the negative ELBO with its reconstruction and KL terms, the importance-weighted NLL
estimate with K samples (Burda et al. 2015), per-dimension KL and active units (Burda et al.:
unit u is active if Cov_x(E_q[z_u]) > 0.01).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Sequence

import torch
from tqdm import tqdm

from training.loss import elbo_terms, gaussian_kl, iwae_nll
from training.model import VAE

EVAL_SEED = 1234  # fixes the binarisation of the test set so every run scores the same bits
ACTIVE_THRESHOLD = 0.01


def binarize_fixed(x: torch.Tensor, seed: int = EVAL_SEED) -> torch.Tensor:
    """One Bernoulli draw of x [N, 784] with a fixed seed: the same binary test set every time."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    return torch.bernoulli(x.cpu(), generator=g).to(x.device)


@torch.no_grad()
def elbo_metrics(model: VAE, x: torch.Tensor, batch_size: int = 1000, seed: int = EVAL_SEED) -> dict[str, float]:
    """Mean negative ELBO, reconstruction and KL (nats) over x [N, 784], one z sample each (seeded).

    Always the Bernoulli likelihood, whatever loss the model trained with, so numbers compare.
    """
    was_training = model.training
    model.eval()
    devices = {x.device.type}
    with torch.random.fork_rng(devices=[] if devices == {"cpu"} else None):
        torch.manual_seed(seed)
        recon = kl = 0.0
        for start in range(0, len(x), batch_size):
            terms = elbo_terms(model, x[start : start + batch_size], likelihood="bernoulli")
            recon += terms.recon.sum().item()
            kl += terms.kl.sum().item()
    model.train(was_training)
    n = len(x)
    return {"neg_elbo": (recon + kl) / n, "recon": recon / n, "kl": kl / n}


@torch.no_grad()
def latent_stats(model: VAE, x: torch.Tensor, batch_size: int = 1000) -> dict[str, Any]:
    """Per-dimension mean KL [D], Cov_x(E_q[z_u]) [D] and the active-unit count."""
    mus, kls = [], []
    for start in range(0, len(x), batch_size):
        mu, logvar = model.encode(x[start : start + batch_size])
        mus.append(mu)
        kls.append(gaussian_kl(mu, logvar))
    mu_all = torch.cat(mus)
    kl_per_dim = torch.cat(kls).mean(0)
    activity = mu_all.var(0, unbiased=False)
    return {
        "kl_per_dim": kl_per_dim.cpu().tolist(),
        "mu_variance": activity.cpu().tolist(),
        "active_units": int((activity > ACTIVE_THRESHOLD).sum().item()),
    }


@torch.no_grad()
def iwae_metric(model: VAE, x: torch.Tensor, k: int, batch_size: int = 100, seed: int = EVAL_SEED, progress: bool = True,
                proposal_scale: float = 1.0) -> float:
    """Mean importance-weighted NLL estimate with k samples over x [N, 784] (nats); proposal: q(z|x)
    with sigma times proposal_scale (see `iwae_nll`)."""
    model.eval()
    torch.manual_seed(seed)
    total = 0.0
    for start in tqdm(range(0, len(x), batch_size), desc=f"IWAE k={k}", disable=not progress, leave=False):
        total += iwae_nll(model, x[start : start + batch_size], k, proposal_scale=proposal_scale).sum().item()
    return total / len(x)


def evaluate(model: VAE, images: torch.Tensor, iw_samples: int = 1000, progress: bool = True,
             proposal_scale: float = 1.0) -> dict[str, Any]:
    """All test metrics for images [N, 784] in [0, 1] (binarised here with the fixed seed)."""
    model.eval()
    x = binarize_fixed(images)
    t0 = time.perf_counter()
    out: dict[str, Any] = {"n": len(x), "binarization_seed": EVAL_SEED}
    elbo = elbo_metrics(model, x)
    if model.config.posterior == "none":
        # A plain autoencoder's posterior is a point: its KL, hence its ELBO, is unbounded, and the
        # stand-in log-variance (training.model.NO_NOISE_LOGVAR) would make up a number: report the
        # reconstruction only (the per-unit KL stays, as the atlas needs it; docs/ladder.md says why).
        elbo = {"recon": elbo["recon"]}
    out.update(elbo)
    out.update(latent_stats(model, x))
    if iw_samples > 0 and model.config.posterior != "none":  # no noise, no density: no NLL to estimate
        out["iw_samples"] = iw_samples
        out["nll"] = iwae_metric(model, x, iw_samples, progress=progress, proposal_scale=proposal_scale)
        if proposal_scale != 1.0:
            out["proposal_scale"] = proposal_scale
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out


def format_report(m: dict[str, Any]) -> str:
    lines = [
        f"test images          {m['n']} (dynamically binarised, seed {m['binarization_seed']})",
        f"negative ELBO        {m['neg_elbo']:.2f} nats  (reconstruction {m['recon']:.2f} + KL {m['kl']:.2f})"
        if "neg_elbo" in m else f"reconstruction       {m['recon']:.2f} nats  (no noise on the code: KL and ELBO undefined)",
    ]
    if "nll" in m:
        widened = f", proposal sigma x {m['proposal_scale']}" if "proposal_scale" in m else ""
        lines.append(f"NLL (IWAE, k={m['iw_samples']:<5}) {m['nll']:.2f} nats{widened}")
    lines.append(f"active units         {m['active_units']} of {len(m['kl_per_dim'])}")
    stand_in = "" if "neg_elbo" in m else "  (from the stand-in sigma of a point posterior: not a real KL)"
    lines.append("KL per dimension     " + " ".join(f"{v:.2f}" for v in m["kl_per_dim"]) + stand_in)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, *, expected_md5: Mapping[str, str] | None = None,
         sources: Sequence[Callable[[Path], None]] | None = None) -> int:
    """Run the command; returns the exit code. `expected_md5`/`sources` go to training.data.load_mnist."""
    from training.checkpoint import CheckpointError, load_vae
    from training.data import DEFAULT_ROOT, MNIST_FILES, MnistUnavailableError, load_mnist

    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--iw-samples", type=int, default=1000, help="importance samples for the NLL (0 skips it)")
    parser.add_argument("--proposal-scale", type=float, default=1.0,
                        help="importance samples from q(z|x) with sigma times this (default 1: q itself); any "
                             "value > 0 gives a valid estimate, > 1 is tighter when q is too narrow")
    parser.add_argument("--data-root", default=str(DEFAULT_ROOT))
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args(argv)
    if args.proposal_scale <= 0:
        parser.error(f"--proposal-scale must be > 0, got {args.proposal_scale}")
    try:
        model = load_vae(args.checkpoint)
        images, _ = load_mnist(args.data_root, False, expected_md5 or MNIST_FILES, sources)
    except (CheckpointError, MnistUnavailableError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    metrics = evaluate(model, images, args.iw_samples, progress=not args.json, proposal_scale=args.proposal_scale)
    print(json.dumps(metrics) if args.json else format_report(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
