"""`python -m training [flags]`: train the VAE on MNIST, then evaluate it, write its atlas and print a summary.

Everything that can be checked before touching the data is checked first (the starting checkpoint
exists, the output is not an existing checkpoint, its folder is writable, the data root is a
folder), so a bad command fails at once and changes nothing. Errors are one line: `error: ...`.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from common.paths import atlas_path_for
from common.records import Metrics
from training.checkpoint import CheckpointError, read_checkpoint, resume_path
from training.config import TrainConfig, parse_args
from training.mnist_sources import MNIST_FILES
from training.train import TrainingDiverged, TrainResult, config_differences, selection_score, train


class PreflightError(ValueError):
    """A run that must not start; the message says why and how to fix it."""


def _writable_folder(folder: Path) -> None:
    """Create `folder` if needed and prove a file can be written in it (mode bits do not stop root)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise PreflightError(f"cannot write to the output folder {folder} ({e.strerror or e}); "
                             "choose another --output") from e


def preflight(cfg: TrainConfig) -> None:
    """Refuse a run that would fail late or overwrite a checkpoint the user did not ask to replace."""
    if (init := cfg.init_path()) is not None:
        if not init.is_file():
            raise PreflightError(f"--init-from {cfg.init_from}: no such checkpoint")
    out = cfg.output_path()
    last = resume_path(out)
    if out.is_dir():
        raise PreflightError(f"--output {out} is a folder, not a checkpoint file; give a file name such as {out / 'run.pt'}")
    resuming = cfg.resume and last.is_file()
    if resuming:
        # The same run or none: settings that differ would make train() refuse, but only after the
        # data is loaded; say it now. (--force does not override this: it replaces, it never mixes.)
        saved = read_checkpoint(last).get("train_config") or {}
        if diffs := config_differences(dict(saved), cfg):
            raise PreflightError(f"--resume: {last} is another run (it differs in {', '.join(diffs)}); "
                                 "rerun with its settings, or --output NEW.pt for a new run")
    # Both files count: a fresh run would overwrite the .last.pt of a killed run as surely as the best one.
    existing = next((p for p in (out, last) if p.exists()), None)
    if existing is not None and not (resuming or cfg.force):
        raise PreflightError(f"{existing} exists: --resume to continue that run, --force to replace it, or --output NEW.pt")
    _writable_folder(out.parent)
    root = cfg.data_path()
    if root.exists() and not root.is_dir():
        raise PreflightError(f"--data-root {root} is a file; give the folder that holds (or will hold) MNIST/raw")


def _best_row(result: TrainResult, cfg: TrainConfig) -> dict[str, Any]:
    """The history row of the epoch whose weights were kept: the lowest IWAE bound when trained on
    it, else the lowest train.selection_score (recon + beta x KL: with beta != 1 not the -ELBO)."""
    if not result.history:
        return {}
    if "test_iwae" in result.history[-1]:
        return min(result.history, key=lambda r: r["test_iwae"])
    return min(result.history, key=lambda r: selection_score(
        {"neg_elbo": r["test_neg_elbo"], "recon": r["test_recon"], "kl": r["test_kl"]}, cfg))


def summary_lines(cfg: TrainConfig, result: TrainResult, seconds: float, atlas_metrics: Metrics | None,
                  atlas_file: Path | None) -> list[str]:
    """Every figure the run computed, one per line, for the final summary."""
    row = _best_row(result, cfg)
    lines = [f"checkpoint    {result.best_path}", f"resume state  {result.last_path}",
             f"trained       {result.epochs_run} epoch{'' if result.epochs_run == 1 else 's'} in {seconds:.0f} s" + (f" (best: epoch {row['epoch']})" if row else "")]
    if row:
        lines.append(f"test -ELBO    {row['test_neg_elbo']:.2f} nats = reconstruction {row['test_recon']:.2f} + KL {row['test_kl']:.2f}")
        if cfg.iw_samples > 1:
            lines.append(f"test IWAE     {row['test_iwae']:.2f} nats (k={cfg.iw_samples}, the trained bound)")
    if atlas_metrics:
        if atlas_metrics.nll is not None:
            lines.append(f"test NLL      {atlas_metrics.nll:.2f} nats (importance-weighted, k={atlas_metrics.iw_samples})")
        if atlas_metrics.active_units is not None:
            lines.append(f"active units  {atlas_metrics.active_units} / {len(atlas_metrics.kl_per_dim)}")
        if atlas_metrics.tsne_seconds is not None:
            lines.append(f"t-SNE         {atlas_metrics.tsne_seconds:.0f} s")
    if result.dynamics_path is not None:
        lines.append(f"dynamics      {result.dynamics_path}")
    if atlas_file is not None:
        lines.append(f"latent atlas  {atlas_file}")
    return lines


def main(argv: Sequence[str] | None = None, *, expected_md5: Mapping[str, str] = MNIST_FILES,
         sources: Sequence[Callable[[Path], None]] | None = None) -> int:
    """Run `python -m training`; returns the exit code. `expected_md5` and `sources` go to
    training.data.load_mnist (tests pass synthetic md5s and no sources: nothing is fetched)."""
    from training import data

    cfg = parse_args(argv)
    try:
        preflight(cfg)
        source = data.ensure_mnist(cfg.data_path(), expected_md5, sources)
        print(f"MNIST: {source.origin} ({source.raw_dir})")
        train_x, _ = data.load_mnist(cfg.data_path(), True, expected_md5, ())
        test_x, test_y = data.load_mnist(cfg.data_path(), False, expected_md5, ())
        t0 = time.perf_counter()
        result = train(cfg, train_x, test_x, data_md5=source.md5)
        seconds = time.perf_counter() - t0
        metrics, atlas_file = None, None
        if cfg.atlas:
            from training.atlas import write_atlas_for

            k = cfg.final_eval_samples()
            atlas = write_atlas_for(result.best_path, test_x, test_y, iw_samples=k, progress=cfg.progress)
            metrics, atlas_file = atlas.metrics, atlas_path_for(result.best_path)
        print("\nsummary")
        for line in summary_lines(cfg, result, seconds, metrics, atlas_file):
            print(f"  {line}")
    except (data.MnistUnavailableError, TrainingDiverged, CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        # A full disk or a folder that vanished mid-run: checkpoints are written atomically, so the
        # ones already on disk are whole; say so rather than dumping a traceback.
        where = f" ({e.filename})" if e.filename else ""
        print(f"error: could not write{where}: {e.strerror or e}. Free some space or choose another --output; "
              "checkpoints already saved are intact (--resume continues from the last one).", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
