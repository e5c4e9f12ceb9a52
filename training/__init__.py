"""Training package for the 8-d MNIST VAE: model, loss, data, trainer, evaluation, latent atlas.

The app and scripts use only this small API:
    load_vae(path) -> VAE in eval mode on CPU;  DEFAULT_CHECKPOINT;  atlas_path_for / load_atlas.
"""

from pathlib import Path

from training.atlas import atlas_path_for, load_atlas
from training.checkpoint import CheckpointError, load_vae
from training.model import VAE, ModelConfig

DEFAULT_CHECKPOINT: Path = Path(__file__).resolve().parent.parent / "models" / "default.pt"

__all__ = ["DEFAULT_CHECKPOINT", "VAE", "ModelConfig", "CheckpointError", "load_vae", "atlas_path_for", "load_atlas"]
