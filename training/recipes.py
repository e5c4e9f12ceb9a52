"""`python -m training.recipes NAME`: rebuild a shipped model, every training stage, with one command.

A recipe is the exact sequence of `python -m training` runs behind a model in `models/`. Stages
before the last write to `artifacts/recipes/` (git-ignored), so the app never lists half-made
models; the last stage writes the shipped path and its atlas. Each stage runs with `--resume`, and a
finished stage is skipped, so rerunning a killed recipe continues where it stopped. Each stage
also runs with `--force`: replacing the shipped files is what a recipe is for (a plain
`python -m training` never overwrites a checkpoint). A stage with `copy_to` ships a byte copy of
its checkpoint and atlas under a second name (the ladder's VAE is the beta sweep's beta = 1 member).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from common.fileio import atomic_write_bytes, file_sha256
from common.paths import atlas_path_for
from training.checkpoint import CheckpointError, read_checkpoint, resume_path
from training.config import REPO_ROOT, parse_args
from training.train import config_differences

STAGING = "artifacts/recipes"


@dataclass(frozen=True)
class Stage:
    """One `python -m training` run: its flags, without --threads/--resume/--force/--progress."""

    name: str
    argv: tuple[str, ...]
    # If set: after the run (skipped when its checkpoint and atlas are already shipped), copy the
    # checkpoint and its atlas byte for byte to this path, so one model is not trained twice.
    copy_to: str | None = None


# The beta sweep: the seed architecture at six KL weights, otherwise identical (same seed, data order,
# 60 epochs, warm-up), in its own folder. Small atlases (--atlas-subset) keep all six within 15 MB;
# NLL at k=200, a fifth of the shipped models' cost (enough to rank betas; about 0.3 nats above k=1000).
BETAS = ("0.25", "0.5", "1", "2", "4", "8")
BETA_FOLDER = "models/beta"


def beta_stage(beta: str) -> Stage:
    """The sweep member trained with KL weight `beta` (a decimal string, as in its file name)."""
    return Stage(f"beta {beta}", ("--preset", "seed", "--beta", beta, "--epochs", "60", "--atlas-subset",
                                  "--eval-iw-samples", "200", "--output", f"{BETA_FOLDER}/beta-{beta}.pt"))


# The ladder from autoencoder to VAE (docs/ladder.md): the sweep's architecture, data, seed, epochs,
# optimiser, small atlases and NLL budget, trained four ways. Rungs without KL (beta 0) have no
# warm-up to do; the fixed noise's sigma 0.15 is the beta = 1 member's typical learnt sigma (the
# geometric mean over its test digits and units is 0.145), so rung 3 differs from rung 4 only in that
# the noise is fixed instead of learnt per input. The plain AE has no noise, hence no NLL (k=0).
LADDER_FOLDER = "models/ladder"
LADDER_NOISE_SIGMA = "0.15"
LADDER_COMMON = ("--preset", "seed", "--epochs", "60", "--atlas-subset")
LADDER: tuple[Stage, ...] = (
    Stage("ae", (*LADDER_COMMON, "--posterior", "none", "--beta", "0", "--warmup-epochs", "0", "--eval-iw-samples", "0",
                 "--output", f"{LADDER_FOLDER}/ae.pt")),
    Stage("ae-noise", (*LADDER_COMMON, "--posterior", "fixed", "--noise-sigma", LADDER_NOISE_SIGMA, "--beta", "0",
                       "--warmup-epochs", "0", "--eval-iw-samples", "200", "--output", f"{LADDER_FOLDER}/ae-noise.pt")),
    Stage("ae-noise-kl", (*LADDER_COMMON, "--posterior", "fixed", "--noise-sigma", LADDER_NOISE_SIGMA, "--beta", "1",
                          "--eval-iw-samples", "200", "--output", f"{LADDER_FOLDER}/ae-noise-kl.pt")),
    # The VAE rung is the sweep's beta = 1 member (same budget): trained once, shipped under both names.
    Stage("vae", beta_stage("1").argv, copy_to=f"{LADDER_FOLDER}/vae.pt"),
)

RECIPES: dict[str, tuple[Stage, ...]] = {
    # The last stage of each recipe states the k of its atlas' NLL: the shipped atlases' k=1000, not
    # the automatic min(1000, 20 x epochs) a 40-epoch stage would get.
    "seed": (Stage("seed", ("--preset", "seed", "--epochs", "100", "--eval-iw-samples", "1000", "--output", "models/seed.pt")),),
    "default": (
        Stage("elbo", ("--epochs", "250", "--no-atlas", "--output", f"{STAGING}/default.stage1.pt")),
        # Fine-tuning on the IWAE bound; no KL warm-up, since the weights are already trained.
        Stage("iwae", ("--init-from", f"{STAGING}/default.stage1.pt", "--iw-samples", "5", "--warmup-epochs", "0",
                       "--epochs", "40", "--lr", "1e-4", "--eval-iw-samples", "1000", "--output", "models/default.pt")),
    ),
    "beta": tuple(beta_stage(b) for b in BETAS),
    "ladder": LADDER,
}


def _measure_ladder(threads: int) -> int:
    """After the ladder's stages: its figures (training.ladder), which the app's ladder page reads."""
    from training.ladder import main as measure

    return measure(["--threads", str(threads)])


# What a recipe runs after its last stage (always: cheap, and it must follow the checkpoints).
AFTER: dict[str, Callable[[int], int]] = {"ladder": _measure_ladder}


def stage_argv(stage: Stage, threads: int, progress: bool) -> list[str]:
    """The full flag list of a stage as this recipe runs it."""
    # --force: recipes exist to rebuild the shipped models, so replacing their files is what was asked.
    return [*stage.argv, "--threads", str(threads), "--resume", "--force", "--progress" if progress else "--no-progress"]


def stage_finished(argv: Sequence[str]) -> bool:
    """True if the stage's best checkpoint exists and its resume file, written by a run with these
    same training settings (a stale file from another run does not count), says every epoch ran."""
    cfg = parse_args(argv)
    last = resume_path(cfg.output_path())
    if not cfg.output_path().is_file() or not last.is_file():
        return False
    try:
        state = read_checkpoint(last)
        return not config_differences(dict(state["train_config"]), cfg) and int(state["epoch"]) >= cfg.epochs
    except (CheckpointError, KeyError, TypeError, ValueError):
        return False


def shipped(argv: Sequence[str]) -> bool:
    """True if the stage's checkpoint and its atlas both exist (made by an earlier run of it)."""
    out = parse_args(argv).output_path()
    return out.is_file() and atlas_path_for(out).is_file()


def copy_shipped(argv: Sequence[str], copy_to: str, log: Callable[[str], None]) -> None:
    """Copy the stage's checkpoint and atlas byte for byte to copy_to (relative: under the repo root),
    atomically; skipped when the copy is already identical."""
    source = parse_args(argv).output_path()
    target = Path(copy_to) if Path(copy_to).is_absolute() else REPO_ROOT / copy_to
    for src, dst in ((source, target), (atlas_path_for(source), atlas_path_for(target))):
        if dst.is_file() and file_sha256(dst) == file_sha256(src):
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(dst, lambda f, src=src: f.write(src.read_bytes()))
        log(f"copied {src.relative_to(REPO_ROOT) if src.is_relative_to(REPO_ROOT) else src} -> {dst}")


def run_recipe(name: str, threads: int = 1, progress: bool = True, dry_run: bool = False,
               run_stage: Callable[[list[str]], int] | None = None, log: Callable[[str], None] = print) -> int:
    """Run (or with dry_run, only print) every unfinished stage of RECIPES[name]; 0 on success."""
    if run_stage is None:
        from training.__main__ import main as run_stage
    stages = RECIPES[name]
    for i, stage in enumerate(stages, 1):
        argv = stage_argv(stage, threads, progress)
        command = "python -m training " + " ".join(argv)
        if stage.copy_to is not None and (stage_finished(argv) or shipped(argv)):
            log(f"[{name} {i}/{len(stages)} {stage.name}] shipped by another recipe; copying it to {stage.copy_to}")
            if not dry_run:
                copy_shipped(argv, stage.copy_to, log)
            continue
        if stage_finished(argv):
            log(f"[{name} {i}/{len(stages)} {stage.name}] already finished: {command}")
            continue
        log(f"[{name} {i}/{len(stages)} {stage.name}] {command}")
        if dry_run:
            continue
        Path(parse_args(argv).output_path()).parent.mkdir(parents=True, exist_ok=True)
        if (rc := run_stage(argv)) != 0:
            log(f"stage {stage.name} failed (exit {rc}); rerun the same command to continue from where it stopped")
            return rc
        if stage.copy_to is not None:
            copy_shipped(argv, stage.copy_to, log)
    if name in AFTER:
        log(f"[{name}] measuring: python -m training.{name}")
        if not dry_run and (rc := AFTER[name](threads)) != 0:
            return rc
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.recipes", description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(RECIPES), help="which shipped model to rebuild (beta: the whole beta sweep)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for every stage (default: 1)")
    parser.add_argument("--dry-run", action="store_true", help="print the stage commands without running them")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="log lines instead of progress bars")
    args = parser.parse_args(argv)
    return run_recipe(args.name, threads=args.threads, progress=args.progress, dry_run=args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
