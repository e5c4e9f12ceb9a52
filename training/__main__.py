"""`python -m training [flags]`: train the VAE on MNIST, then evaluate it and write its atlas."""

from __future__ import annotations

import sys
import time
from typing import Sequence

from training.checkpoint import CheckpointError
from training.config import parse_args
from training.train import TrainingDiverged, train


def main(argv: Sequence[str] | None = None) -> int:
    from training import data

    cfg = parse_args(argv)
    try:
        source = data.ensure_mnist(cfg.data_path())
        print(f"MNIST: {source.origin} ({source.raw_dir})")
        train_x, _ = data.load_mnist(cfg.data_path(), train=True)
        test_x, test_y = data.load_mnist(cfg.data_path(), train=False)
        t0 = time.perf_counter()
        result = train(cfg, train_x, test_x, data_md5=source.md5)
        metric = f"test IWAE k={cfg.iw_samples} bound" if cfg.iw_samples > 1 else "test -ELBO"
        print(f"done in {time.perf_counter() - t0:.0f} s: best {metric} {result.best_test_neg_elbo:.2f} nats -> {result.best_path}")
        if cfg.atlas:
            from training.atlas import write_atlas_for

            atlas_path = write_atlas_for(result.best_path, test_x, test_y, iw_samples=cfg.eval_iw_samples, progress=cfg.progress)
            print(f"latent atlas -> {atlas_path}")
    except (data.MnistUnavailableError, TrainingDiverged, CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
