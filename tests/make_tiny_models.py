"""Rebuild tests/assets/tiny_models/: a briefly trained 8-d VAE and its real atlas over 300 synthetic digits.

    PYTHONPATH=. python tests/make_tiny_models.py [--out tests/assets/tiny_models] [--force]

The app and browser tests read this committed folder (copied into their tmp_path) instead of
training a model and running t-SNE in every session. Rebuild it only when the checkpoint or atlas
format changes; it refuses to replace existing files without --force.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # for conftest.synthetic_digits when run as a script

from conftest import synthetic_digits  # noqa: E402

from training.atlas import write_atlas_for  # noqa: E402
from training.config import TrainConfig  # noqa: E402
from training.train import train  # noqa: E402


def _as_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images.reshape(len(images), -1)).float() / 255.0


def build(folder: Path) -> Path:
    """Train for 3 epochs on 512 synthetic digits and write default.pt + default.atlas.npz into folder."""
    torch.set_num_threads(1)
    tr_x, _ = synthetic_digits(512, seed=3)
    te_x, te_y = synthetic_digits(300, seed=4)
    cfg = TrainConfig(epochs=3, batch_size=64, encoder_hidden=(32,), decoder_hidden=(32,), latent_dim=8,
                      warmup_epochs=1.0, progress=False, output=str(folder / "default.pt"), eval_iw_samples=5)
    result = train(cfg, _as_tensor(tr_x), _as_tensor(te_x), log=lambda s: None)
    result.last_path.unlink()  # the app's picker skips resume files anyway; keep the folder small
    write_atlas_for(result.best_path, _as_tensor(te_x), torch.from_numpy(te_y).long(), iw_samples=5, progress=False)
    return result.best_path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "assets" / "tiny_models")
    parser.add_argument("--force", action="store_true", help="replace existing files")
    args = parser.parse_args()
    if (args.out / "default.pt").exists() and not args.force:
        print(f"error: {args.out / 'default.pt'} exists; pass --force to replace it", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.out) as tmp:  # build aside, then move both files in
        built = build(Path(tmp))
        for name in (built.name, built.stem + ".atlas.npz"):
            (Path(tmp) / name).replace(args.out / name)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
