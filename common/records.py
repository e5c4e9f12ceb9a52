"""Typed records an atlas carries about its checkpoint: the evaluation (`Metrics`) and the training
summary (`CheckpointSummary`, with one `Stage` per training stage).

Both travel as JSON objects inside the atlas (metrics_json, checkpoint_json), written by training/
and read by the app, which never imports torch. Each record reads every version of its JSON that
was ever written (a missing field is None; an unknown one is kept in `extra` and written back), so
a reader sees each field once, here, instead of picking keys out of a dict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["CheckpointSummary", "Metrics", "RecordError", "Stage"]


class RecordError(ValueError):
    """A record whose JSON cannot be read as its type; the message names the field."""


def _number(d: Mapping[str, Any], key: str) -> float | None:
    value = d.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RecordError(f"{key} must be a finite number, got {value!r}")
    return float(value)


def _count(d: Mapping[str, Any], key: str) -> int | None:
    value = _number(d, key)
    if value is None:
        return None
    if value != int(value):
        raise RecordError(f"{key} must be a whole number, got {d.get(key)!r}")
    return int(value)


def _numbers(d: Mapping[str, Any], key: str) -> tuple[float, ...]:
    value = d.get(key)
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        raise RecordError(f"{key} must be a list of numbers")
    return tuple(_number({key: v}, key) for v in value)  # type: ignore[misc]


def _text(d: Mapping[str, Any], key: str) -> str | None:
    value = d.get(key)
    return None if value is None else str(value)


def _object(d: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = d.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RecordError(f"{key} must be a JSON object")
    return dict(value)


def _plain(record: Any, omit: tuple[str, ...] = ()) -> dict[str, Any]:
    """A record's fields as JSON values, None fields left out, `extra` merged back in."""
    out: dict[str, Any] = dict(getattr(record, "extra", {}))
    for f in fields(record):
        if f.name == "extra" or f.name in omit:
            continue
        value = getattr(record, f.name)
        if value is None:
            continue
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


@dataclass(frozen=True)
class Metrics:
    """The test-set evaluation of training.evaluate (nats; lower is better), as the atlas stores it.

    n test digits, dynamically binarised with binarization_seed; the -ELBO split into reconstruction and
    KL; per-unit KL and Cov_x(E_q[z_u]) [D]; NLL estimated with iw_samples importance samples (None
    when not estimated), with the proposal's sigma times proposal_scale (None: 1).
    """

    n: int | None = None
    binarization_seed: int | None = None
    neg_elbo: float | None = None
    recon: float | None = None
    kl: float | None = None
    kl_per_dim: tuple[float, ...] = ()
    mu_variance: tuple[float, ...] = ()
    active_units: int | None = None
    iw_samples: int | None = None
    nll: float | None = None
    proposal_scale: float | None = None
    seconds: float | None = None  # the evaluation's wall time
    tsne_seconds: float | None = None  # the t-SNE's, when the atlas computed it
    extra: Mapping[str, Any] = field(default_factory=dict)  # fields this code does not know, kept as read

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Metrics:
        if not isinstance(d, Mapping):
            raise RecordError("metrics must be a JSON object")
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(n=_count(d, "n"), binarization_seed=_count(d, "binarization_seed"), neg_elbo=_number(d, "neg_elbo"),
                   recon=_number(d, "recon"), kl=_number(d, "kl"), kl_per_dim=_numbers(d, "kl_per_dim"),
                   mu_variance=_numbers(d, "mu_variance"), active_units=_count(d, "active_units"),
                   iw_samples=_count(d, "iw_samples"), nll=_number(d, "nll"),
                   proposal_scale=_number(d, "proposal_scale"), seconds=_number(d, "seconds"),
                   tsne_seconds=_number(d, "tsne_seconds"),
                   extra={k: v for k, v in d.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass(frozen=True)
class Stage:
    """One training stage behind a checkpoint's weights."""

    objective: str  # "ELBO" or "IWAE bound (k=5)"
    epochs: int | None = None  # run in this stage
    best_epoch: int | None = None  # the epoch whose weights the stage kept
    lr: float | None = None  # its starting learning rate

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Stage:
        if not isinstance(d, Mapping):
            raise RecordError("a stage must be a JSON object")
        return cls(objective=str(d.get("objective", "?")), epochs=_count(d, "epochs"),
                   best_epoch=_count(d, "best_epoch"), lr=_number(d, "lr"))

    def to_dict(self) -> dict[str, Any]:
        return {"objective": self.objective, "epochs": self.epochs, "best_epoch": self.best_epoch, "lr": self.lr}


@dataclass(frozen=True)
class CheckpointSummary:
    """What an atlas records of its checkpoint: the architecture and training settings as saved
    (training.model.ModelConfig / training.config.TrainConfig fields), the stages, and the selection
    score of the kept epoch (the trained objective on the test set: recon + beta KL, or the -IWAE bound)."""

    model_config: Mapping[str, Any]
    train_config: Mapping[str, Any] = field(default_factory=dict)
    stages: tuple[Stage, ...] = ()  # oldest first; a model trained once has one
    best_epoch: int | None = None  # of the last stage
    epochs_trained: int | None = None  # in the last stage
    best_selection_score: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CheckpointSummary:
        if not isinstance(d, Mapping):
            raise RecordError("the checkpoint summary must be a JSON object")
        stages = d.get("stages") or []
        if not isinstance(stages, list):
            raise RecordError("stages must be a list")
        # Atlases written before the field was named for what it holds call it best_test_neg_elbo.
        score = _number(d, "best_selection_score")
        score = _number(d, "best_test_neg_elbo") if score is None else score
        known = {f.name for f in fields(cls)} - {"extra"} | {"best_test_neg_elbo"}
        return cls(model_config=_object(d, "model_config"), train_config=_object(d, "train_config"),
                   stages=tuple(Stage.from_dict(s) for s in stages), best_epoch=_count(d, "best_epoch"),
                   epochs_trained=_count(d, "epochs_trained"), best_selection_score=score,
                   extra={k: v for k, v in d.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        out = _plain(self, omit=("stages", "model_config", "train_config"))
        out.update(model_config=dict(self.model_config), train_config=dict(self.train_config),
                   stages=[s.to_dict() for s in self.stages])
        return out

    def _setting(self, key: str) -> float | None:
        value = self.train_config.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    @property
    def beta(self) -> float | None:
        """The KL weight of the last stage's training, None if not recorded."""
        return self._setting("beta")

    @property
    def warmup_epochs(self) -> float | None:
        """The KL warm-up of the last stage's training in epochs, None if not recorded."""
        return self._setting("warmup_epochs")

    @property
    def preset(self) -> str | None:
        value = self.train_config.get("preset")
        return None if value is None else str(value)

    @property
    def stage_objectives(self) -> list[str]:
        return [s.objective for s in self.stages]
