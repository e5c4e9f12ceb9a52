"""Find checkpoints and load a model together with its latent atlas, with clear errors.

The app never encodes the test set or runs t-SNE: everything about the test set comes from the
atlas written at training time (training.atlas), and so do the weights, run in NumPy. Nothing here
imports torch; the checkpoint file is only hashed, to check the atlas belongs to it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from explorer.numpy_vae import NumpyVAE
from training import DEFAULT_CHECKPOINT
from training.atlas_io import atlas_path_for, load_atlas
from training.fileio import file_sha256

MODELS_DIR_ENV = "VAE_EXPLORER_MODELS"  # lets tests and users point the app at another folder


class ModelUnavailableError(ValueError):
    """A checkpoint or its atlas cannot be used; the message says what to run to fix it."""


@dataclass(frozen=True)
class ExplorerModel:
    """A loaded checkpoint: the VAE (eval, CPU), its atlas arrays and the facts the sidebar shows."""

    name: str
    path: Path
    sha256: str
    model: NumpyVAE
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


def model_facts(atlas: dict[str, Any], model: NumpyVAE) -> dict[str, Any]:
    """Preset, sizes, epochs and test metrics for display; missing values are None."""
    metrics = atlas.get("metrics", {})
    info = atlas.get("checkpoint", {})
    train_cfg = info.get("train_config") or {}
    cfg = model.config
    return {
        "preset": train_cfg.get("preset"),
        # Training stages, oldest first (a fine-tuned model has several); atlases made before stages
        # were recorded have none, and then the one stage is the checkpoint's own.
        "stages": [dict(s) for s in info.get("stages") or []],
        "latent_dim": model.latent_dim,
        "parameters": model.num_parameters(),
        "epochs_trained": info.get("epochs_trained"),  # in the last stage
        "epochs_total": sum(int(s.get("epochs") or 0) for s in info.get("stages") or []) or info.get("epochs_trained"),
        "best_epoch": info.get("best_epoch"),
        "test_neg_elbo": metrics.get("neg_elbo"),
        "test_nll": metrics.get("nll"),
        "iw_samples": metrics.get("iw_samples"),
        "active_units": metrics.get("active_units"),
        "encoder": [cfg["input_dim"], *cfg["encoder_hidden"], model.latent_dim],
        "decoder": [model.latent_dim, *cfg["decoder_hidden"], cfg["input_dim"]],
    }


def describe_stages(stages: list[dict[str, Any]]) -> str:
    """'250 epochs on the ELBO → 40 on the IWAE bound (k=5)'; '' for a model trained in one stage."""
    if len(stages) < 2:
        return ""
    first, *rest = stages
    return " → ".join([f"{first.get('epochs')} epochs on the {first.get('objective')}",
                       *(f"{s.get('epochs')} on the {s.get('objective')}" for s in rest)])


def load_explorer_model(path: str | Path) -> ExplorerModel:
    """Checkpoint + atlas at `path`. Raises ModelUnavailableError (a ValueError) with the fix."""
    path = Path(path)
    if not path.is_file():
        raise ModelUnavailableError(f"checkpoint not found: {path}")
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
    try:
        model = NumpyVAE(atlas["checkpoint"]["model_config"], atlas["weights"])
    except (KeyError, ValueError) as e:
        raise ModelUnavailableError(f"{atlas_file.name} holds no usable weights ({e}); rebuild it with "
                                    f"`python -m training.export {path}`") from e
    if atlas["mu"].shape[1] != model.latent_dim:
        raise ModelUnavailableError(f"{atlas_file.name} has {atlas['mu'].shape[1]}-d codes but the model is {model.latent_dim}-d")
    return ExplorerModel(path.stem, path, sha, model, atlas, model_facts(atlas, model))
