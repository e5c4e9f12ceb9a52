"""`python -m training.export CHECKPOINT [--iw-samples K] [--reuse]`: (re)write the latent atlas of a checkpoint."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from training.atlas import write_atlas_for
from training.checkpoint import CheckpointError


def main(argv: Sequence[str] | None = None) -> int:
    from training.data import DEFAULT_ROOT, MnistUnavailableError, load_mnist

    parser = argparse.ArgumentParser(prog="python -m training.export", description=__doc__)
    parser.add_argument("checkpoint")
    parser.add_argument("--iw-samples", type=int, default=1000, help="importance samples for the stored NLL (0 skips)")
    parser.add_argument("--data-root", default=str(DEFAULT_ROOT))
    parser.add_argument("--reuse", action="store_true",
                        help="keep the t-SNE and metrics of an existing atlas of the same checkpoint (skips minutes of work)")
    args = parser.parse_args(argv)
    try:
        images, labels = load_mnist(args.data_root, train=False)
        path = write_atlas_for(args.checkpoint, images, labels, iw_samples=args.iw_samples, reuse=args.reuse)
    except (CheckpointError, MnistUnavailableError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"latent atlas -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
