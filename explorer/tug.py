"""The facts the tug-of-war page states: where training went (in words), and the beta sweep's points.

NumPy only, no Streamlit. The sentences are computed from a model's recorded dynamics
(common.dynamics_format.Dynamics), so they say what *this* model did, including where it does not
follow the simple story ("the KL term pulls every code toward N(0, I) as training goes on").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from common.atlas_format import Atlas
from common.dynamics_format import ACTIVE_THRESHOLD, Dynamics
from common.records import Stage

NEARLY_COLLAPSED_KL = 0.25  # nats: an active unit carrying less than this is pointed out as close to collapse


@dataclass(frozen=True)
class SweepPoint:
    """One model of a rate-distortion plot, from its atlas (whole test set, nats per digit)."""

    name: str  # bundle.checkpoint_name, e.g. "beta/beta-2"
    beta: float
    kl: float  # the rate: E_x KL(q(z|x) || N(0, I))
    recon: float  # the distortion: E_x E_q[-log p(x|z)]
    nll: float | None  # IWAE estimate of -log p(x), if it was measured
    iw_samples: int | None  # its k
    active_units: int
    latent_dim: int
    mean_sigma: float  # posterior sigma exp(logvar / 2), averaged over digits and units


def beta_of(atlas: Atlas) -> float | None:
    """The KL weight the model was trained with (its last stage's), None if the atlas does not say."""
    return atlas.checkpoint.beta


def sweep_point(name: str, atlas: Atlas) -> SweepPoint | None:
    """The model's point, or None if its atlas lacks beta, KL or reconstruction."""
    m, beta = atlas.metrics, beta_of(atlas)
    if beta is None or m.kl is None or m.recon is None:
        return None
    return SweepPoint(name=name, beta=beta, kl=m.kl, recon=m.recon, nll=m.nll,
                      iw_samples=m.iw_samples if m.nll is not None else None,
                      active_units=int(atlas.active.sum()), latent_dim=atlas.latent_dim,
                      mean_sigma=float(np.exp(0.5 * atlas.logvar).mean()))


def sorted_sweep(points: Sequence[SweepPoint]) -> list[SweepPoint]:
    """Points in increasing beta."""
    return sorted(points, key=lambda p: p.beta)


def stage_starts(dyn: Dynamics) -> list[tuple[int, int]]:
    """(stage, first epoch) of each stage after the first: where the curves mark a new stage."""
    change = np.flatnonzero(np.diff(dyn.stage) != 0) + 1
    return [(int(dyn.stage[i]), int(dyn.epoch[i])) for i in change]


def _stage_label(stages: Sequence[Stage], stage: int) -> str:
    return stages[stage].objective if 0 <= stage < len(stages) else f"stage {stage + 1}"


def fixed_projection(atlas: Atlas) -> tuple[np.ndarray, np.ndarray]:
    """(mean [D], components [2, D]): the final model's PCA axes, used for every snapshot so that
    motion on the animated map is the codes moving, not the axes turning."""
    return atlas.pca_mean.astype(np.float64), atlas.pca_components.astype(np.float64)


def project(codes: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    """codes [..., D] -> [..., 2] float32 on fixed axes."""
    return ((codes - mean) @ components.T).astype(np.float32)


def training_story(dyn: Dynamics, stages: Sequence[Stage] = (), warmup_epochs: float | None = None) -> list[str]:
    """Three or four sentences on what the curves show, with this model's numbers.

    `stages` are Atlas.checkpoint.stages; `warmup_epochs` the first stage's KL warm-up if known.
    """
    kl, recon, e = dyn.test_kl.astype(float), dyn.test_recon.astype(float), dyn.epoch
    last, sentences = len(e) - 1, []
    first_stage_end = int(np.flatnonzero(dyn.stage == dyn.stage[0])[-1])
    k_min = int(np.argmin(kl[: first_stage_end + 1]))
    sentences.append(
        f"Over {int(e[-1])} epochs the test reconstruction error fell from {recon[0]:.1f} nats after epoch "
        f"{int(e[0])} to {recon[-1]:.1f}, and the KL term went from {kl[0]:.1f} to {kl[-1]:.1f} nats.")
    if kl[0] > kl[-1] + 1 and k_min > 0:
        warm = (f"the {warmup_epochs:g}-epoch warm-up starts the KL weight near 0" if warmup_epochs
                else "the KL weight is warmed up from 0")
        sentences.append(
            f"That is not the simple story of a prior pulling codes in more and more: KL was highest at the start, "
            f"because {warm}. The encoder first learnt nearly noiseless codes (mean sigma {dyn.sigma_mean[0].mean():.2f} "
            f"after epoch {int(e[0])}) and gave information up as the weight grew, down to {kl[k_min]:.1f} nats at "
            f"epoch {int(e[k_min])}.")
        if kl[first_stage_end] > kl[k_min] + 0.5:
            sentences.append(
                f"After that KL rose again by {kl[first_stage_end] - kl[k_min]:.1f} nats while reconstruction kept "
                f"improving: once the weight stopped growing, the decoder found more information worth its price.")
    elif kl[-1] > kl[0] + 1:
        sentences.append(
            f"KL rose, not fell: the encoder bought better reconstructions with {kl[-1] - kl[0]:.1f} more nats of "
            f"information, which is the fight the page is about, won step by step by reconstruction.")
    for stage, start in stage_starts(dyn):
        rows = np.flatnonzero(dyn.stage == stage)
        before, end = rows[0] - 1, rows[-1]
        dk, dr = kl[end] - kl[before], recon[end] - recon[before]
        sentences.append(
            f"The {_stage_label(stages, stage)} stage (epochs {start}-{int(e[end])}) moved KL by {dk:+.1f} and "
            f"reconstruction by {dr:+.1f} nats: " + (
                "the tighter bound let the model use more information, the opposite of what extra KL pressure would do."
                if dk > 0 and dr < 0 else "a small last adjustment."))
    final_kl, sigma = dyn.kl_per_dim[last], dyn.sigma_mean[last]
    # Collapsed = inactive, the criterion of the "active units" figure (the variance of the posterior
    # means over the test set at most ACTIVE_THRESHOLD), so the sentence and the figure agree.
    collapsed = [int(u) for u in np.flatnonzero(dyn.mu_variance[last] <= ACTIVE_THRESHOLD)]
    alive = np.setdiff1d(np.arange(dyn.latent_dim), collapsed)
    if collapsed:
        names = ", ".join(f"z{u}" for u in collapsed)
        sentences.append(
            f"{len(collapsed)} of {dyn.latent_dim} units collapsed to the prior ({names}: the posterior mean no longer "
            f"depends on the digit, sigma {sigma[collapsed].min():.2f}-{sigma[collapsed].max():.2f}): KL won there, "
            f"and the decoder ignores them" + (f"; the others settled at sigma {sigma[alive].min():.2f}-"
                                               f"{sigma[alive].max():.2f}." if len(alive) else "."))
    else:
        weakest = int(np.argmin(final_kl))
        close = (f"; z{weakest} carries only {final_kl[weakest]:.2f} nats and is close to collapse"
                 if final_kl[weakest] < NEARLY_COLLAPSED_KL else ": here reconstruction won every unit")
        sentences.append(
            f"No unit collapsed: all {dyn.latent_dim} stay active, carrying {final_kl.min():.2f}-{final_kl.max():.1f} nats "
            f"with mean sigma {sigma.min():.2f}-{sigma.max():.2f}{close}.")
    return sentences
