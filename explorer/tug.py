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
    median_norm: float = float("nan")  # median |mu| over the atlas's digits: how far codes sit from the prior's centre


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
                      mean_sigma=float(np.exp(0.5 * atlas.logvar).mean()),
                      median_norm=float(np.median(np.linalg.norm(atlas.mu.astype(np.float64), axis=1))))


def sorted_sweep(points: Sequence[SweepPoint]) -> list[SweepPoint]:
    """Points in increasing beta."""
    return sorted(points, key=lambda p: p.beta)


def sweep_story(points: Sequence[SweepPoint]) -> list[str]:
    """What the sweep shows, in sentences computed from its points (sorted by beta, at least two).

    Only what the numbers say: KL and reconstruction at both ends, the posterior noise, how far the
    codes sit from the prior's centre, and whether any unit collapsed (inactive by the active-units
    criterion) at any beta; a sweep where every unit stays active says so instead of "collapse".
    """
    lo, hi = points[0], points[-1]
    ends = f"from β = {lo.beta:g} to β = {hi.beta:g}"
    sentences = [
        f"The same network trained {len(points)} times, changing only β, the weight of the KL term. "
        f"{ends[0].upper() + ends[1:]} the KL falls from {lo.kl:.1f} to {hi.kl:.1f} nats per digit (less "
        f"information in the code) and the reconstruction error "
        + (f"rises from {lo.recon:.1f} to {hi.recon:.1f} nats: the digits come back blurrier."
           if hi.recon > lo.recon else f"goes from {lo.recon:.1f} to {hi.recon:.1f} nats.")]
    noise = (f"The posterior noise grows: mean σ {lo.mean_sigma:.2f} at β = {lo.beta:g}, {hi.mean_sigma:.2f} at "
             f"β = {hi.beta:g}" if hi.mean_sigma > lo.mean_sigma else
             f"Mean σ goes from {lo.mean_sigma:.2f} to {hi.mean_sigma:.2f}")
    if np.isfinite(lo.median_norm) and np.isfinite(hi.median_norm):
        moved = "move in toward" if hi.median_norm < lo.median_norm else "do not move in toward"
        noise += (f", and the codes {moved} the prior's centre (median distance from 0: {lo.median_norm:.2f} → "
                  f"{hi.median_norm:.2f}; the maps below share their axes, so this shows).")
    else:
        noise += "."
    sentences.append(noise)
    active = [p.active_units for p in points]
    dim = points[0].latent_dim
    if min(active) == dim:
        sentences.append(
            f"No unit collapses in this sweep: all {dim} of {dim} stay active at every β, even β = {hi.beta:g}. "
            f"KL thins every unit's information instead of switching some off.")
    else:
        worst = min(points, key=lambda p: (p.active_units, -p.beta))
        first = next(p for p in points if p.active_units < dim)
        sentences.append(
            f"Units collapse to the prior as β grows: {first.active_units} of {dim} active at β = {first.beta:g}, "
            f"{worst.active_units} of {dim} at β = {worst.beta:g} (a collapsed unit's code no longer depends on the digit).")
    return sentences


def marked_note(marked: Sequence[tuple[str, SweepPoint]], points: Sequence[SweepPoint]) -> str:
    """Where each marked (shipped) model sits against the sweep's point of the same beta, in words
    computed from both points ("" when no marked model has a sweep twin)."""
    by_beta = {p.beta: p for p in points}
    parts = []
    for label, m in marked:
        twin = by_beta.get(m.beta)
        if twin is None:
            continue
        d = m.recon - twin.recon
        parts.append(f"{label} {abs(d):.1f} nats {'below' if d < 0 else 'above'} the sweep's β = {m.beta:g}")
    return ("Reconstruction error of the shipped models (trained with their own recipes): " + "; ".join(parts) + "."
            if parts else "")


def shared_range(coords: Sequence[np.ndarray], pad: float = 0.06) -> tuple[float, float]:
    """One symmetric axis range (-r, r) holding (almost) every point of every coords [N_i, 2], for
    maps that must share fixed axes; the 99.9th percentile of |x| and |y| so one stray code does
    not shrink the rest, rounded up to a half unit."""
    r = max(float(np.percentile(np.abs(c), 99.9)) for c in coords)
    r = np.ceil(r * (1 + pad) * 2) / 2
    return -float(r), float(r)


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
