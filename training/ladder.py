"""`python -m training.ladder`: measure the ladder from autoencoder to VAE (models/ladder/) on the
MNIST test set and write models/ladder/figures.json, which the app's ladder page reads.

Per rung: reconstruction error and KL (the evaluation of training.evaluate, one z from the rung's own
q(z|x)), the importance-weighted NLL of its atlas (absent for the plain autoencoder, which has no
noise, hence no density), the spread of the 10,000 test means, the share of 1,000 fixed prior draws
that the repo's digit classifier (tools.digit_classifier, tests/assets/digit_classifier.pt) names with
>= 0.9 confidence. (The share of codes on straight paths that fall in holes is
torch-free and computed by the page from the atlas: explorer.ladder.hole_share.)

The classifier is a torch CNN, so this figure is computed here, once, and stored; the app stays
torch-free and only reads it (a NumPy port of a conv net to serve one number would be code to keep
in sync for nothing). The file records each checkpoint's sha256; the page refuses stale figures.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from common.atlas_format import AtlasError, load_atlas
from common.fileio import file_sha256
from common.paths import atlas_path_for
from common import ladder_format as ladder
from training.checkpoint import CheckpointError, model_from_checkpoint, read_checkpoint
from training.config import REPO_ROOT
from training.evaluate import binarize_fixed, elbo_metrics
from training.model import VAE

LADDER_DIR = REPO_ROOT / "models" / ladder.FAMILY
CLASSIFIER = REPO_ROOT / "tests" / "assets" / "digit_classifier.pt"  # tools.digit_classifier, 99.1 % on MNIST test


@torch.no_grad()
def recognised(model: VAE, classifier: torch.nn.Module, z: np.ndarray,
               confidence: float = ladder.RECOGNISED_CONFIDENCE) -> tuple[float, np.ndarray, np.ndarray]:
    """Decode the codes z [P, D] to pixel means and classify them: (share with top probability >=
    confidence, labels [P], top probabilities [P])."""
    from tools.digit_classifier import predict_proba

    pixels = torch.sigmoid(model.decode(torch.from_numpy(np.asarray(z, dtype=np.float32))))
    p = predict_proba(classifier, pixels)
    top, labels = p.max(dim=1)
    return float((top >= confidence).float().mean()), labels.numpy(), top.numpy()


@torch.no_grad()
def rung_figures(name: str, checkpoint: Path, test_images: torch.Tensor, classifier: torch.nn.Module) -> ladder.RungFigures:
    """Every section-2 figure of one rung (see the module docstring); test_images [N, 784] in [0, 1]."""
    ckpt = read_checkpoint(checkpoint)
    model = model_from_checkpoint(ckpt, checkpoint).eval()
    atlas = load_atlas(atlas_path_for(checkpoint))
    sha = file_sha256(checkpoint)
    if atlas.checkpoint_sha256 != sha:
        raise AtlasError(f"{atlas_path_for(checkpoint).name} was made for another version of {checkpoint.name}; "
                         f"rebuild it with `python -m training.export {checkpoint}`")
    posterior = model.config.posterior
    x = binarize_fixed(test_images.float())
    elbo = elbo_metrics(model, x)
    mu, _ = model.encode(test_images.float())  # the means of the grey-level digits, as the atlas stores them
    mu_std, radius95 = ladder.spread(mu.numpy())
    share, labels, top = recognised(model, classifier, ladder.prior_draws(model.latent_dim))
    nll = atlas.metrics.nll if posterior != "none" else None
    k = atlas.metrics.iw_samples if nll is not None else None
    n = ladder.SHOWN_DRAWS
    return ladder.RungFigures(
        name=name, sha256=sha, recon=float(elbo["recon"]), nll=None if nll is None else float(nll),
        iw_samples=None if k is None else int(k), kl=None if posterior == "none" else float(elbo["kl"]),
        mu_std=tuple(float(v) for v in mu_std), radius95=radius95, recognised=share,
        shown_labels=tuple(int(v) for v in labels[:n]), shown_confidence=tuple(round(float(v), 4) for v in top[:n]),
        noise_sigma=float(np.exp(0.5 * model.config.posterior_logvar)) if posterior == "fixed" else None,
        posterior=posterior)


def measure(folder: Path, test_images: torch.Tensor, classifier_path: Path, log=print) -> list[ladder.RungFigures]:
    """The figures of every rung in `folder`, in ladder order."""
    from tools.digit_classifier import load_classifier

    classifier, _ = load_classifier(classifier_path)
    out = []
    for rung in ladder.RUNGS:
        t0 = time.perf_counter()
        fig = rung_figures(ladder.checkpoint_name_of(rung), folder / f"{rung.file}.pt", test_images, classifier)
        log(f"{fig.name:20s} recon {fig.recon:7.2f}  NLL {fig.nll if fig.nll is None else round(fig.nll, 2)!s:>7}  "
            f"radius95 {fig.radius95:6.2f}  recognisable {100 * fig.recognised:5.1f} %"
            f"  ({time.perf_counter() - t0:.1f} s)")
        out.append(fig)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from training.data import DEFAULT_ROOT, MNIST_FILES, MnistUnavailableError, load_mnist

    parser = argparse.ArgumentParser(prog="python -m training.ladder", description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default=str(LADDER_DIR), help="the ladder's models (default: models/ladder)")
    parser.add_argument("--classifier", default=str(CLASSIFIER), help="digit classifier file (tools.digit_classifier)")
    parser.add_argument("--data-root", default=str(DEFAULT_ROOT))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    folder = Path(args.folder)
    try:
        images, _ = load_mnist(args.data_root, False, MNIST_FILES)
        figs = measure(folder, images, Path(args.classifier))
    except (CheckpointError, AtlasError, MnistUnavailableError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    provenance = {"command": "python -m training.ladder", "prior_draws": ladder.PRIOR_DRAWS, "prior_seed": ladder.PRIOR_SEED,
                  "confidence": ladder.RECOGNISED_CONFIDENCE,
                  "classifier": "tests/assets/digit_classifier.pt", "test_digits": len(images)}
    out = folder / ladder.FIGURES_FILE
    ladder.write_figures(out, figs, provenance)
    print(f"ladder figures -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
