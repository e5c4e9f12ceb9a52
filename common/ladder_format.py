"""The ladder from autoencoder to VAE (models/ladder/, docs/ladder.md): its rungs, the fixed prior
draws every rung is measured with, and the figures file. Torch-free, shared by training.ladder
(which writes the figures) and explorer.ladder / the app's ladder page (which read them).

The four rungs are one architecture trained four ways (training.recipes LADDER): a plain
autoencoder, the same with fixed Gaussian noise on the code, plus the KL pull on the means, and the
VAE (learnt noise + KL).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from common.fileio import atomic_write_bytes

FAMILY = "ladder"  # the models folder's subfolder, and the prefix of the rungs' checkpoint names
FIGURES_FILE = "figures.json"  # models/ladder/figures.json, written by `python -m training.ladder`
FIGURES_FORMAT = 1

PRIOR_DRAWS = 1000  # z ~ N(0, I), the same for every rung
PRIOR_SEED = 2021
SHOWN_DRAWS = 16  # the first 16 of them are decoded on the page
RECOGNISED_CONFIDENCE = 0.9  # the classifier names a draw "recognisable" at this softmax probability or more


@dataclass(frozen=True)
class Rung:
    """One model of the ladder and how the picker and the page name it."""

    file: str  # checkpoint stem in models/ladder/
    title: str  # the plain-words name the model picker shows
    change: str  # what this rung adds to the one before


RUNGS: tuple[Rung, ...] = (
    Rung("ae", "1 · plain autoencoder", "the code is the encoder's output: no noise, no KL"),
    Rung("ae-noise", "2 · autoencoder + fixed noise", "fixed Gaussian noise is added to the code in training"),
    Rung("ae-noise-kl", "3 · fixed noise + KL pull", "the KL term pulls the codes' means toward 0"),
    Rung("vae", "4 · VAE: learnt noise + KL", "a second encoder head learns the noise level per input"),
)


def checkpoint_name_of(rung: Rung) -> str:
    """'ladder/ae': the name bundle.checkpoint_name gives the rung's checkpoint."""
    return f"{FAMILY}/{rung.file}"


def rung_of(checkpoint_name: str) -> Rung | None:
    """The rung whose checkpoint is called `checkpoint_name` ("ladder/ae"), if any."""
    return next((r for r in RUNGS if checkpoint_name_of(r) == checkpoint_name), None)


def display_name(checkpoint_name: str, default: str) -> str:
    """The model picker's label of a checkpoint: "ladder / 1 · plain autoencoder" for a rung, else `default`."""
    rung = rung_of(checkpoint_name)
    return f"{FAMILY} / {rung.title}" if rung is not None else default


def prior_draws(latent_dim: int, n: int = PRIOR_DRAWS, seed: int = PRIOR_SEED) -> np.ndarray:
    """The fixed prior draws z ~ N(0, I): float32 [n, latent_dim], the same on every machine."""
    return np.random.default_rng(seed).standard_normal((n, latent_dim)).astype(np.float32)


def spread(mu: np.ndarray) -> tuple[np.ndarray, float]:
    """(per-unit std of the means [D], the radius |mu| within which 95 % of them lie) of mu [N, D]."""
    mu = np.asarray(mu, dtype=np.float64)
    return mu.std(0), float(np.quantile(np.linalg.norm(mu, axis=1), 0.95))


class LadderFiguresError(ValueError):
    """The figures file is missing, unreadable or was made for other checkpoints."""


@dataclass(frozen=True)
class RungFigures:
    """Section 2 of issue 21 for one rung, on the MNIST test set (training.ladder computes them)."""

    name: str  # checkpoint name, "ladder/ae"
    sha256: str  # of the checkpoint the figures were computed from
    recon: float  # reconstruction error -log p(x|z), nats per digit, z from the rung's own q(z|x)
    nll: float | None  # importance-weighted NLL estimate (nats); None where undefined (no noise)
    iw_samples: int | None
    kl: float | None  # KL(q(z|x) || N(0, I)), nats per digit; None where undefined (no noise)
    mu_std: tuple[float, ...]  # per-unit std of the means over the 10,000 test digits [D]
    radius95: float  # 95 % of the means lie within this |mu|
    recognised: float  # share of the PRIOR_DRAWS decoded prior draws the classifier names with >= 0.9
    shown_labels: tuple[int, ...]  # the classifier's label of the first SHOWN_DRAWS draws
    shown_confidence: tuple[float, ...]  # and its softmax probability
    noise_sigma: float | None  # the fixed noise's sigma; None when learnt or absent
    posterior: str  # "none", "fixed" or "learnt"


def write_figures(path: str | Path, rungs: Sequence[RungFigures], provenance: dict[str, Any]) -> None:
    """Save the figures of every rung as one JSON file, atomically."""
    doc = {"format": FIGURES_FORMAT, "provenance": provenance, "rungs": [asdict(r) for r in rungs]}
    text = json.dumps(doc, indent=1, allow_nan=False)
    atomic_write_bytes(path, lambda f: f.write(text.encode("utf-8")))


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise LadderFiguresError(f"{what} is not a finite number")
    return float(value)


def read_figures(path: str | Path) -> dict[str, RungFigures]:
    """The figures by checkpoint name. Raises LadderFiguresError with the reason."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise LadderFiguresError(f"no {Path(path).name}; compute it with `python -m training.ladder`") from e
    except OSError as e:  # the reason without the path: the page shows this message
        raise LadderFiguresError(f"{Path(path).name} cannot be read ({e.strerror or type(e).__name__})") from e
    except ValueError as e:
        raise LadderFiguresError(f"{Path(path).name} cannot be read (not JSON: {e})") from e
    if not isinstance(doc, dict) or doc.get("format") != FIGURES_FORMAT or not isinstance(doc.get("rungs"), list):
        raise LadderFiguresError(f"{Path(path).name} is not a ladder figures file of format {FIGURES_FORMAT}")
    out: dict[str, RungFigures] = {}
    for i, r in enumerate(doc["rungs"]):
        try:
            d = int(len(r["mu_std"]))
            fig = RungFigures(
                name=str(r["name"]), sha256=str(r["sha256"]), recon=_number(r["recon"], "recon"),
                nll=None if r["nll"] is None else _number(r["nll"], "nll"),
                iw_samples=None if r["iw_samples"] is None else int(r["iw_samples"]),
                kl=None if r["kl"] is None else _number(r["kl"], "kl"),
                mu_std=tuple(_number(v, "mu_std") for v in r["mu_std"]), radius95=_number(r["radius95"], "radius95"),
                recognised=_number(r["recognised"], "recognised"),
                shown_labels=tuple(int(v) for v in r["shown_labels"]),
                shown_confidence=tuple(_number(v, "shown_confidence") for v in r["shown_confidence"]),
                noise_sigma=None if r["noise_sigma"] is None else _number(r["noise_sigma"], "noise_sigma"),
                posterior=str(r["posterior"]))
        except (KeyError, TypeError, ValueError) as e:
            raise LadderFiguresError(f"{Path(path).name}: rung {i} is malformed ({e})") from e
        if d < 1 or not (0 <= fig.recognised <= 1):
            raise LadderFiguresError(f"{Path(path).name}: rung {i} holds impossible values")
        out[fig.name] = fig
    return out
