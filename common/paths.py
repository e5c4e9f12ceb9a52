"""Where things live: the repo, the shipped models, and the atlas file beside each checkpoint."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT: Path = Path(__file__).resolve().parent.parent
MODELS_DIR: Path = REPO_ROOT / "models"
DEFAULT_CHECKPOINT: Path = MODELS_DIR / "default.pt"
ATLAS_SUFFIX = ".atlas.npz"


def atlas_path_for(checkpoint: str | Path) -> Path:
    """models/vae.pt -> models/vae.atlas.npz"""
    p = Path(checkpoint)
    return p.with_name(p.stem + ATLAS_SUFFIX)
