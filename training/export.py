"""`python -m training.export CHECKPOINT [--iw-samples K] [--reuse] [--subset]`: (re)write the latent atlas of a checkpoint.

The atlas is derived data: rewriting it is what this command is for (atomically; the old file stays
whole if anything fails). The checkpoint itself is only read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from common.atlas_format import AtlasError
from common.paths import atlas_path_for
from training.atlas import write_atlas_for
from training.checkpoint import CheckpointError, read_checkpoint
from training.mnist_sources import MNIST_FILES


def main(argv: Sequence[str] | None = None, *, expected_md5: Mapping[str, str] = MNIST_FILES,
         sources: Sequence[Callable[[Path], None]] | None = None) -> int:
    """Run the command; returns the exit code. `expected_md5`/`sources` go to training.data.load_mnist."""
    from training.data import DEFAULT_ROOT, MnistUnavailableError, load_mnist

    parser = argparse.ArgumentParser(prog="python -m training.export", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--iw-samples", type=int, default=1000, help="importance samples for the stored NLL (0 skips)")
    parser.add_argument("--data-root", default=str(DEFAULT_ROOT))
    parser.add_argument("--reuse", action="store_true",
                        help="keep the t-SNE and metrics of an existing atlas of the same checkpoint (skips minutes of work)")
    parser.add_argument("--subset", action=argparse.BooleanOptionalAction, default=None,
                        help="keep only the 2,006 test digits the training dynamics follow (default: as the checkpoint "
                             "was trained, its --atlas-subset)")
    args = parser.parse_args(argv)
    try:
        read_checkpoint(args.checkpoint)  # a bad checkpoint fails before any data is touched
        images, labels = load_mnist(args.data_root, False, expected_md5, sources)
        atlas = write_atlas_for(args.checkpoint, images, labels, iw_samples=args.iw_samples, reuse=args.reuse,
                                subset=args.subset)
    except (CheckpointError, MnistUnavailableError, AtlasError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: could not write the atlas ({e.strerror or e}); the old one, if any, is intact", file=sys.stderr)
        return 1
    m = atlas.metrics
    nll = f", test NLL {m.nll:.2f} (k={m.iw_samples})" if m.nll is not None else ""
    print(f"latent atlas -> {atlas_path_for(args.checkpoint)}{nll}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
