"""Training package for the 8-d MNIST VAE: model, loss, data, trainer, evaluation, latent atlas.

The app and scripts use only this small API:
    load_vae(path) -> VAE in eval mode on CPU;  DEFAULT_CHECKPOINT;  atlas_path_for / load_atlas.
Names that need torch are imported on first use, so `training.atlas_io` (what the app reads)
can be imported without paying torch's import time.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

DEFAULT_CHECKPOINT: Path = Path(__file__).resolve().parent.parent / "models" / "default.pt"

_LAZY = {
    "load_vae": "training.checkpoint",
    "CheckpointError": "training.checkpoint",
    "VAE": "training.model",
    "ModelConfig": "training.model",
    "atlas_path_for": "training.atlas_io",
    "load_atlas": "training.atlas_io",
}

__all__ = ["DEFAULT_CHECKPOINT", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'training' has no attribute {name!r}")
