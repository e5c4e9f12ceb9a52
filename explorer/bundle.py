"""Find checkpoints and load a model together with its latent atlas, with clear errors.

The app never encodes the test set or runs t-SNE: everything about the test set comes from the
atlas written at training time (training.atlas).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training import DEFAULT_CHECKPOINT, VAE, atlas_path_for, load_atlas
from training.checkpoint import CheckpointError, file_sha256, model_from_checkpoint, read_checkpoint

MODELS_DIR_ENV = "VAE_EXPLORER_MODELS"  # lets tests and users point the app at another folder


class ModelUnavailableError(ValueError):
    """A checkpoint or its atlas cannot be used; the message says what to run to fix it."""


@dataclass(frozen=True)
class ExplorerModel:
    """A loaded checkpoint: the VAE (eval, CPU), its atlas arrays and the facts the sidebar shows."""

    name: str
    path: Path
    sha256: str
    model: VAE
    atlas: dict[str, Any]
    facts: dict[str, Any]

    @property
    def latent_dim(self) -> int:
        return self.model.latent_dim


def models_dir() -> Path:
    """The folder the model picker lists: $VAE_EXPLORER_MODELS or the repo's models/."""
    return Path(os.environ.get(MODELS_DIR_ENV) or DEFAULT_CHECKPOINT.parent)


def list_checkpoints(folder: str | Path) -> list[Path]:
    """Best checkpoints (*.pt, not the *.last.pt resume files) in `folder`, the default one first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    paths = sorted(p for p in folder.glob("*.pt") if not p.name.endswith(".last.pt"))
    return sorted(paths, key=lambda p: p.name != DEFAULT_CHECKPOINT.name)


def model_facts(ckpt: dict[str, Any], atlas: dict[str, Any], model: VAE) -> dict[str, Any]:
    """Preset, sizes, epochs and test metrics for display; missing values are None."""
    metrics = atlas.get("metrics", {})
    train_cfg = ckpt.get("train_config") or {}
    history = ckpt.get("history") or []
    return {
        "preset": train_cfg.get("preset"),
        "latent_dim": model.latent_dim,
        "parameters": model.num_parameters(),
        "epochs_trained": len(history) or ckpt.get("epoch"),
        "best_epoch": ckpt.get("epoch"),
        "test_neg_elbo": metrics.get("neg_elbo"),
        "test_nll": metrics.get("nll"),
        "iw_samples": metrics.get("iw_samples"),
        "active_units": metrics.get("active_units"),
        "encoder": [model.config.input_dim, *model.config.encoder_hidden, model.latent_dim],
        "decoder": [model.latent_dim, *model.config.decoder_hidden, model.config.input_dim],
    }


def load_explorer_model(path: str | Path) -> ExplorerModel:
    """Checkpoint + atlas at `path`. Raises ModelUnavailableError (a ValueError) with the fix."""
    path = Path(path)
    try:
        ckpt = read_checkpoint(path)
        model = model_from_checkpoint(ckpt, path).eval()
    except CheckpointError as e:
        raise ModelUnavailableError(str(e)) from e
    atlas_file = atlas_path_for(path)
    if not atlas_file.is_file():
        raise ModelUnavailableError(f"{path.name} has no latent atlas ({atlas_file.name}); create it with "
                                    f"`python -m training.export {path}`")
    try:
        atlas = load_atlas(atlas_file)
    except (ValueError, OSError) as e:
        raise ModelUnavailableError(f"{atlas_file.name} is unreadable ({e}); rebuild it with `python -m training.export {path}`") from e
    sha = file_sha256(path)
    if atlas["checkpoint_sha256"] != sha:
        raise ModelUnavailableError(f"{atlas_file.name} was made for another version of {path.name}; "
                                    f"rebuild it with `python -m training.export {path}`")
    if atlas["mu"].shape[1] != model.latent_dim:
        raise ModelUnavailableError(f"{atlas_file.name} has {atlas['mu'].shape[1]}-d codes but the model is {model.latent_dim}-d")
    return ExplorerModel(path.stem, path, sha, model, atlas, model_facts(ckpt, atlas, model))
