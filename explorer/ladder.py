"""The ladder page's torch-free measurements and words: the share of codes on straight paths that
the studio calls sparse or holes (computed from a rung's atlas, as the studio sees its codes), and one sentence
per step of the argument, every comparison chosen from the figures (common.ladder_format)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from common.ladder_format import PRIOR_DRAWS, RUNGS, RungFigures
from explorer.studio import NeighbourSpacing, neighbour_spacing, verdict

PATHS = 200  # straight paths between pairs of test digits of the atlas, for the studio verdict shares
PATH_SEED = 7
PATH_STEPS = 9  # interior codes per path: t = 0.1, ..., 0.9 (the ends are test codes themselves)

# The page's interpolation: these two test digits (test-set indices, both in every small atlas: the
# first 8 test digits are always kept) through PAGE_STEPS codes, ends included.
INTERPOLATION = (0, 3)  # a 7 into a 0
PAGE_STEPS = 10


def path_pairs(n_codes: int, n_paths: int = PATHS, seed: int = PATH_SEED) -> np.ndarray:
    """int64 [n_paths, 2]: fixed pairs of distinct rows (of an atlas with n_codes digits)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n_codes, n_paths)
    b = (a + rng.integers(1, n_codes, n_paths)) % n_codes  # never a itself
    return np.stack([a, b], axis=1)


def straight_paths(mu: np.ndarray, pairs: np.ndarray, steps: int = PATH_STEPS) -> np.ndarray:
    """Codes on the straight segments between the pairs' codes, ends excluded: [P, steps, D]."""
    t = (np.arange(1, steps + 1) / (steps + 1))[None, :, None]
    a, b = mu[pairs[:, 0]][:, None, :], mu[pairs[:, 1]][:, None, :]
    return (1.0 - t) * a + t * b


def verdicts(codes: np.ndarray, mu: np.ndarray, spacing: NeighbourSpacing) -> list[str]:
    """The studio's plausibility verdict (explorer.studio.verdict on the distance to the nearest test
    code) of every code [M, D] against mu [N, D], via a k-d tree instead of one scan per code."""
    from scipy.spatial import cKDTree  # as explorer.studio: scipy is an app requirement

    dist, _ = cKDTree(np.asarray(mu, dtype=np.float64)).query(np.asarray(codes, dtype=np.float64).reshape(-1, mu.shape[1]))
    return [verdict(float(d), spacing) for d in dist]


@dataclass(frozen=True)
class PathShares:
    """How the studio judges the codes on straight paths between test digits: the shares it calls
    "sparse" (beyond the 95th percentile of the test codes' neighbour spacing) and "hole" (beyond 3x
    the 99th). Both are relative to the model's own code density, so rungs of any scale compare."""

    sparse: float
    hole: float

    @property
    def off(self) -> float:
        """The share off the data: sparse or hole (not "typical")."""
        return self.sparse + self.hole


def path_shares(mu: np.ndarray) -> PathShares:
    """The studio's verdicts on the codes of PATHS straight paths between test digits (mu [N, D],
    the atlas's codes, as the studio sees them)."""
    spacing = neighbour_spacing(mu)
    codes = straight_paths(np.asarray(mu, dtype=np.float64), path_pairs(len(mu)))
    found = verdicts(codes.reshape(-1, codes.shape[-1]), mu, spacing)
    return PathShares(sparse=found.count("sparse") / len(found), hole=found.count("hole") / len(found))


def page_path(mu_from: np.ndarray, mu_to: np.ndarray, steps: int = PAGE_STEPS) -> np.ndarray:
    """The page's straight interpolation: steps codes [steps, D] from mu_from to mu_to, ends included."""
    t = np.linspace(0.0, 1.0, steps)[:, None]
    return ((1.0 - t) * np.asarray(mu_from, dtype=np.float64) + t * np.asarray(mu_to, dtype=np.float64)).astype(np.float32)


def shared_extent(coords: Sequence[np.ndarray], quantile: float = 0.995, pad: float = 0.08) -> float:
    """Half-width r of the square [-r, r]^2 that holds the given share of every map's points [N, 2]
    (all maps, one scale), plus a margin."""
    reach = max(float(np.quantile(np.abs(c), quantile)) for c in coords)
    return reach * (1.0 + pad)


FRAME_COLOURS = {"sparse": (255, 127, 14), "hole": (214, 39, 40)}  # explorer.figures.VERDICT_COLOURS


def mark_frames(picture: np.ndarray, verdicts_: Sequence[str], cols: int, cell: int, gutter: int,
                width: int = 2) -> np.ndarray:
    """An RGB copy [H, W, 3] of an `explorer.grids.tile` picture [H, W] of digits laid out `cols` to a
    row (no row gaps), with a frame drawn inside every digit whose verdict is "sparse" (orange) or
    "hole" (red), the studio's colours. cell: a digit's size in pixels; gutter: the tile's gutter."""
    rgb = np.repeat(np.asarray(picture, dtype=np.uint8)[:, :, None], 3, axis=2)
    for i, v in enumerate(verdicts_):
        colour = FRAME_COLOURS.get(v)
        if colour is None:
            continue
        y0, x0 = (i // cols) * (cell + gutter), (i % cols) * (cell + gutter)
        box = rgb[y0: y0 + cell, x0: x0 + cell]
        box[:width], box[-width:], box[:, :width], box[:, -width:] = colour, colour, colour, colour
    return rgb


def _pct(share: float) -> str:
    return f"{100 * share:.1f} %"


def _more_or_less(before: float, after: float, more: str, less: str, same: str, rel: float = 0.05) -> str:
    """Which word fits the change from `before` to `after` (within rel of each other: `same`)."""
    if abs(after - before) <= rel * max(abs(before), abs(after), 1e-12):
        return same
    return more if after > before else less


def prior_radius95(latent_dim: int) -> float:
    """The radius holding 95 % of N(0, I) draws in latent_dim dimensions: sqrt of chi-square's 95th percentile."""
    from scipy.stats import chi2  # scipy is an app requirement

    return float(np.sqrt(chi2.ppf(0.95, latent_dim)))


def _draws(share: float) -> str:
    """'none of the 1,000 draws' when no prior draw is recognisable, 'only 2.6 % of draws' when few
    are, else '45.9 % of draws'."""
    if share == 0:
        return f"none of the {PRIOR_DRAWS:,} draws"
    return f"only {_pct(share)} of draws" if share < 0.25 else f"{_pct(share)} of draws"


def step_sentences(figs: Sequence[RungFigures], paths: Sequence[PathShares]) -> list[str]:
    """One sentence per rung, in ladder order, that states what its figures (and `paths`, each rung's
    path_shares) show against the rung before. Every comparison word is chosen from the numbers."""
    if len(figs) != len(RUNGS) or len(paths) != len(RUNGS):
        raise ValueError(f"the ladder has {len(RUNGS)} rungs, got figures of {len(figs)} and {len(paths)} path shares")
    off = [p.off for p in paths]
    ae, noise, kl, vae = figs
    prior = prior_radius95(len(ae.mu_std))
    out = [
        f"A plain autoencoder reconstructs a test digit at {ae.recon:.1f} nats, but nothing tells it where to put "
        f"its codes: 95 % of them lie within a radius of {ae.radius95:.1f} (N(0, I) in {len(ae.mu_std)} dimensions: "
        f"{prior:.1f}), and {_draws(ae.recognised)} from N(0, I) decode to a digit the classifier recognises."]
    sigma = noise.noise_sigma or float("nan")
    ratio = min(noise.mu_std) / sigma
    blur = "hardly blurs them" if ratio >= 10 else ("blurs them a little" if ratio >= 3 else "blurs them")
    moved = _more_or_less(ae.radius95, noise.radius95, "spreads its codes wider", "gathers its codes closer",
                          "keeps its codes about as spread")
    out.append(
        f"Adding fixed noise (σ = {sigma:g}) but no KL: the encoder {moved} (95 % radius {ae.radius95:.1f} → "
        f"{noise.radius95:.1f}); each unit's means spread at least {math.floor(ratio)} times σ, so the noise {blur} "
        f"(reconstruction changes by {noise.recon - ae.recon:+.1f} nats), and {_draws(noise.recognised)} from the "
        f"prior are recognisable.")
    pulled = _more_or_less(noise.radius95, kl.radius95, "pushes the codes out", "pulls the codes in",
                           "leaves the codes about as spread")
    near = " (near N(0, I)'s)" if kl.radius95 <= 1.5 * prior else ""
    recog = _more_or_less(noise.recognised, kl.recognised, "rise", "fall", "stay about the same", rel=0.1)
    fewer = _more_or_less(off[1], off[2], "more", "fewer", "about as many", rel=0.1)
    cost = kl.recon - noise.recon
    price = (f"at a cost of {cost:.1f} nats of reconstruction" if cost >= 0
             else f"and reconstruction even improves by {-cost:.1f} nats")
    out.append(
        f"The KL term {pulled} to a 95 % radius of {kl.radius95:.1f}{near}: recognisable prior draws {recog} "
        f"({_pct(noise.recognised)} → {_pct(kl.recognised)}), {fewer} codes on straight paths between test digits "
        f"fall off the data ({_pct(off[1])} → {_pct(off[2])}), {price}.")
    if kl.nll is not None and vae.nll is not None:
        better = _more_or_less(kl.nll, vae.nll, "worsens", "improves", "barely changes", rel=0.005)
        nll = f"the test NLL {better} ({kl.nll:.1f} → {vae.nll:.1f} nats)"
    else:
        nll = "the NLL cannot be compared (not measured)"
    recog4 = _more_or_less(kl.recognised, vae.recognised, "more", "fewer", "about as many", rel=0.1)
    out.append(
        f"Letting the encoder learn the noise per input and unit (the VAE): {nll}, {recog4} prior draws are "
        f"recognisable ({_pct(vae.recognised)}), and reconstruction ({vae.recon:.1f} nats) and KL "
        f"({vae.kl if vae.kl is not None else float('nan'):.1f} nats) trade off through the noise it chooses.")
    return out
