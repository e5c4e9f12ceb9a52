"""Where things live: the repo, the shipped models, and the files beside each checkpoint (atlas, dynamics)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT: Path = Path(__file__).resolve().parent.parent
MODELS_DIR: Path = REPO_ROOT / "models"
DEFAULT_CHECKPOINT: Path = MODELS_DIR / "default.pt"
ATLAS_SUFFIX = ".atlas.npz"
DYNAMICS_SUFFIX = ".dynamics.npz"  # training's sidecar (git-ignored): the atlas carries what it holds


def atlas_path_for(checkpoint: str | Path) -> Path:
    """models/vae.pt -> models/vae.atlas.npz"""
    p = Path(checkpoint)
    return p.with_name(p.stem + ATLAS_SUFFIX)


def dynamics_path_for(checkpoint: str | Path) -> Path:
    """models/vae.pt -> models/vae.dynamics.npz (the training dynamics, rewritten after every epoch)"""
    p = Path(checkpoint)
    return p.with_name(p.stem + DYNAMICS_SUFFIX)
