"""Training package for the 8-d MNIST VAE: model, loss, data, trainer, evaluation, latent atlas.

Scripts use this small API: load_vae(path) -> VAE in eval mode on CPU; VAE, ModelConfig;
CheckpointError. The app never imports this package (it reads atlases through common/).
"""

from __future__ import annotations

from training.checkpoint import CheckpointError, load_vae
from training.model import VAE, ModelConfig

__all__ = ["CheckpointError", "ModelConfig", "VAE", "load_vae"]
