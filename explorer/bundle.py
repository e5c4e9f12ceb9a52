"""Find checkpoints and load a model together with its latent atlas, with clear errors.

The app never encodes the test set or runs t-SNE: everything about the test set comes from the
atlas written at training time, and so do the weights, run in NumPy. Nothing here imports torch;
the checkpoint file is only hashed, to check the atlas belongs to it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.atlas_format import Atlas, AtlasError, load_atlas
from common.fileio import file_sha256
from common.paths import DEFAULT_CHECKPOINT, MODELS_DIR, atlas_path_for
from common.records import Stage
from explorer.numpy_vae import NumpyVAE

MODELS_DIR_ENV = "VAE_EXPLORER_MODELS"  # lets tests and users point the app at another folder


class ModelUnavailableError(ValueError):
    """A checkpoint or its atlas cannot be used.

    `problem` says what is wrong in plain words, with no server path or library text: what a visitor
    of the app may read. The message (str) adds the detail for the server's log and the command line:
    which file, the underlying error, and the command that fixes it.
    """

    def __init__(self, problem: str, detail: str = "") -> None:
        super().__init__(f"{problem}: {detail}" if detail else problem)
        self.problem = problem


@dataclass(frozen=True)
class ModelLoadFailure:
    """Why the model called `name` cannot be used: `problem` is fit for a visitor (common words, no
    paths); the detail with paths and the fix goes to the server's log where the failure is made."""

    name: str
    problem: str


@dataclass(frozen=True)
class ModelFacts:
    """What the sidebar shows about a model; None where the atlas does not say."""

    preset: str | None
    stages: tuple[Stage, ...]  # oldest first; a model trained once has one
    latent_dim: int
    parameters: int
    encoder_sizes: tuple[int, ...]  # 784, hidden..., D
    decoder_sizes: tuple[int, ...]  # D, hidden..., 784
    epochs_trained: int | None  # in the last stage
    epochs_total: int | None  # over all stages
    best_epoch: int | None  # of the last stage: the epoch whose weights these are
    test_neg_elbo: float | None
    test_nll: float | None
    iw_samples: int | None  # k of the NLL estimate
    active_units: int | None


@dataclass(frozen=True)
class ExplorerModel:
    """A loaded checkpoint: the VAE (NumPy), its atlas and the facts the sidebar shows. Read-only."""

    name: str  # checkpoint_name: "default", "beta/beta-2"
    path: Path
    sha256: str
    model: NumpyVAE
    atlas: Atlas
    facts: ModelFacts

    @property
    def latent_dim(self) -> int:
        return self.model.latent_dim


def models_dir() -> Path:
    """The folder the model picker lists: $VAE_EXPLORER_MODELS or the repo's models/."""
    return Path(os.environ.get(MODELS_DIR_ENV) or MODELS_DIR)


def _natural_key(text: str) -> tuple[Any, ...]:
    """Numbers compare as numbers: beta-0.5 < beta-2 < beta-16."""
    return tuple((0, float(part), "") if re.fullmatch(r"\d+(\.\d+)?", part) else (1, 0.0, part)
                 for part in re.split(r"(\d+(?:\.\d+)?)", text) if part)


def list_checkpoints(folder: str | Path) -> list[Path]:
    """Best checkpoints (*.pt, not the *.last.pt resume files) in `folder` and in its subfolders one
    level down (a family of models, such as models/beta/): the default one first, then the others of
    `folder`, then each subfolder's, in natural order (beta-0.5 before beta-2)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []

    def best(where: Path) -> list[Path]:
        return sorted((p for p in where.glob("*.pt") if not p.name.endswith(".last.pt")), key=lambda p: _natural_key(p.name))

    top = sorted(best(folder), key=lambda p: p.name != DEFAULT_CHECKPOINT.name)
    families = sorted((d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")), key=lambda d: d.name)
    return top + [p for d in families for p in best(d)]


def checkpoint_name(path: str | Path, folder: str | Path | None = None) -> str:
    """A checkpoint's name in links and pickers: its path under `folder` (default models_dir())
    without ".pt", e.g. "default" or "beta/beta-2"; its stem if it lies elsewhere."""
    path, folder = Path(path), Path(folder) if folder is not None else models_dir()
    try:
        return path.resolve().relative_to(folder.resolve()).with_suffix("").as_posix()
    except ValueError:
        return path.stem


def model_facts(atlas: Atlas, model: NumpyVAE) -> ModelFacts:
    """The sidebar's facts from the atlas's checkpoint summary and metrics (atlases of older
    versions may lack some: those are None)."""
    metrics, info = atlas.metrics, atlas.checkpoint
    cfg = model.config
    return ModelFacts(
        preset=info.preset,
        stages=info.stages,
        latent_dim=model.latent_dim,
        parameters=model.num_parameters(),
        encoder_sizes=(int(cfg.get("input_dim", 784)), *map(int, cfg["encoder_hidden"]), model.latent_dim),
        decoder_sizes=(model.latent_dim, *map(int, cfg["decoder_hidden"]), int(cfg.get("input_dim", 784))),
        epochs_trained=info.epochs_trained,
        epochs_total=sum(s.epochs or 0 for s in info.stages) or info.epochs_trained,
        best_epoch=info.best_epoch,
        test_neg_elbo=metrics.neg_elbo,
        test_nll=metrics.nll,
        iw_samples=metrics.iw_samples,
        active_units=metrics.active_units,
    )


def describe_stages(stages: tuple[Stage, ...]) -> str:
    """'250 epochs on the ELBO → 40 on the IWAE bound (k=5)'; '' for a model trained in one stage."""
    if len(stages) < 2:
        return ""
    first, *rest = stages
    return " → ".join([f"{first.epochs} epochs on the {first.objective}", *(f"{s.epochs} on the {s.objective}" for s in rest)])


def load_explorer_model(path: str | Path) -> ExplorerModel:
    """Checkpoint + atlas at `path`. Raises ModelUnavailableError (a ValueError): its `problem` for
    visitors, its message with the file and the command that fixes it for the log."""
    path = Path(path)
    rebuild = f"rebuild it with `python -m training.export {path}`"
    if not path.is_file():
        raise ModelUnavailableError("the checkpoint file is missing", f"checkpoint not found: {path}")
    atlas_file = atlas_path_for(path)
    if not atlas_file.is_file():
        raise ModelUnavailableError("it has no latent atlas yet", f"{path.name} has no latent atlas ({atlas_file.name}); "
                                    f"create it with `python -m training.export {path}`")
    try:
        atlas = load_atlas(atlas_file)
    except AtlasError as e:
        raise ModelUnavailableError("its latent atlas is damaged or was written by another version of the explorer",
                                    f"{atlas_file.name} cannot be used: {e}; {rebuild}") from e
    except OSError as e:
        raise ModelUnavailableError("its latent atlas cannot be read",
                                    f"{atlas_file.name} cannot be read ({e.strerror or e})") from e
    try:
        sha = file_sha256(path)
    except OSError as e:  # unreadable checkpoint (permissions, a disk error): a message, not a traceback
        raise ModelUnavailableError("its checkpoint file cannot be read", f"{path} cannot be read ({e.strerror or e})") from e
    if atlas.checkpoint_sha256 != sha:
        raise ModelUnavailableError("its latent atlas belongs to another version of the model",
                                    f"{atlas_file.name} was made for another version of {path.name}; {rebuild}")
    try:
        model = NumpyVAE(atlas.model_config, atlas.weights)
    except ValueError as e:
        raise ModelUnavailableError("its latent atlas holds no usable weights",
                                    f"{atlas_file.name} holds no usable weights: {e}; {rebuild}") from e
    return ExplorerModel(checkpoint_name(path), path, sha, model, atlas, model_facts(atlas, model))
