"""What the app shows about one digit image (an upload today): its code, reconstruction, ELBO, neighbours."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.atlas_format import Atlas
from explorer import codes, projection
from explorer.numpy_vae import NumpyVAE

NEIGHBOURS = 8  # nearest test digits shown for an upload


@dataclass(frozen=True)
class DigitAnalysis:
    """One normalised digit and what the model makes of it.

    image, recon [28, 28] in [0, 1]; mu, sigma [D] of q(z|x); neighbours [k] test-set indices,
    nearest first (Euclidean distance between posterior means).
    """

    image: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray
    recon: np.ndarray
    elbo: codes.ElboSplit
    neighbours: np.ndarray


def analyse_digit(model: NumpyVAE, atlas: Atlas, image: np.ndarray, neighbours: int = NEIGHBOURS) -> DigitAnalysis:
    """Encode image [28, 28], decode its mu, split its -ELBO and find its nearest test codes."""
    mu, sigma = codes.encode_mu_sigma(model, image)
    idx, _ = projection.nearest(mu, atlas.mu, neighbours)
    return DigitAnalysis(image=np.asarray(image, dtype=np.float32), mu=mu, sigma=sigma,
                         recon=codes.decode_pixels(model, mu), elbo=codes.elbo_split(model, image), neighbours=idx)
