"""training.recipes: one command per shipped model, stage by stage, resumable, and true to the shipped files."""

from __future__ import annotations

from pathlib import Path

import pytest

from training import __main__ as cli
from training import recipes
from training.checkpoint import read_checkpoint, stages_of
from training.config import REPO_ROOT, TrainConfig, parse_args

# Settings that say where or how fast a run went, not what it trained.
NOT_TRAINING = {"threads", "resume", "force", "progress", "output", "init_from", "atlas", "data_root", "device",
                "eval_iw_samples"}


def offline_stage_runner(md5: dict[str, str], calls: list[str] | None = None):
    """`python -m training` for a recipe, with the synthetic md5 table and no download source."""
    def run(argv: list[str]) -> int:
        if calls is not None:
            calls.append(" ".join(argv))
        return cli.main(argv, expected_md5=md5, sources=())
    return run


@pytest.fixture
def tiny_recipe(tmp_path: Path, tiny_mnist, monkeypatch) -> tuple[Path, Path]:
    """A two-stage recipe 'tiny' (ELBO, then IWAE k=2) on the synthetic MNIST root; returns its two outputs.
    Run it with run_stage=offline_stage_runner(md5) (the md5 table is tiny_mnist's)."""
    root, md5 = tiny_mnist
    small = ("--data-root", str(root), "--encoder-hidden", "16", "--decoder-hidden", "16", "--latent-dim", "2",
             "--batch-size", "64", "--no-atlas")
    first, final = tmp_path / "staging" / "s1.pt", tmp_path / "models" / "final.pt"
    monkeypatch.setitem(recipes.RECIPES, "tiny", (
        recipes.Stage("elbo", ("--epochs", "2", *small, "--output", str(first))),
        recipes.Stage("iwae", ("--init-from", str(first), "--iw-samples", "2", "--warmup-epochs", "0", "--epochs", "1",
                               *small, "--output", str(final))),
    ))
    return first, final


def test_recipe_runs_each_stage_on_the_last_and_skips_finished_stages(tiny_recipe, tiny_mnist, one_torch_thread):
    first, final = tiny_recipe
    run = offline_stage_runner(tiny_mnist[1])
    logs: list[str] = []
    assert recipes.run_recipe("tiny", progress=False, log=logs.append, run_stage=run) == 0
    stages = stages_of(read_checkpoint(final))
    assert [(s["objective"], s["epochs"]) for s in stages] == [("ELBO", 2), ("IWAE bound (k=2)", 1)]
    before = final.read_bytes(), first.read_bytes()

    logs.clear()
    assert recipes.run_recipe("tiny", progress=False, log=logs.append, run_stage=run) == 0
    assert sum("already finished" in line for line in logs) == 2
    assert (final.read_bytes(), first.read_bytes()) == before  # nothing retrained

    # files left by a run with other settings are not a finished stage: it runs, and --resume refuses them
    other = recipes.Stage("iwae", (*recipes.RECIPES["tiny"][1].argv, "--beta", "0.5"))
    assert not recipes.stage_finished(recipes.stage_argv(other, threads=1, progress=False))


def test_dry_run_prints_the_commands_and_trains_nothing(tiny_recipe):
    first, final = tiny_recipe
    logs: list[str] = []
    assert recipes.run_recipe("tiny", dry_run=True, log=logs.append) == 0
    assert len(logs) == 2 and all(line.split("] ", 1)[1].startswith("python -m training --") for line in logs)
    assert "--init-from " + str(first) in logs[1]
    assert not first.exists() and not final.exists()


def test_a_failing_stage_stops_the_recipe_with_its_exit_code(tmp_path, tiny_recipe, tiny_mnist, monkeypatch):
    first, final = tiny_recipe
    broken = (recipes.Stage("bad", ("--init-from", str(tmp_path / "missing.pt"), "--data-root", str(tiny_mnist[0]),
                                    "--output", str(first))),
              recipes.RECIPES["tiny"][1])
    monkeypatch.setitem(recipes.RECIPES, "tiny", broken)
    calls: list[str] = []
    logs: list[str] = []
    assert recipes.run_recipe("tiny", progress=False, log=logs.append, run_stage=offline_stage_runner(tiny_mnist[1], calls)) == 1
    assert len(calls) == 1 and "rerun the same command" in logs[-1] and not final.exists()  # the next stage never ran


def test_a_stage_that_cannot_start_touches_no_data(tmp_path, capsys, monkeypatch):
    """The case that once renamed a user's real MNIST to *.rejected: a recipe stage whose --init-from is
    missing, run as the old test ran it (no --data-root, so the default data/ under the repo root) while
    the md5 table was another one. The repo root is a tmp folder here (the user's data/ is never the
    subject of a test). Now the run is refused before any data is looked at: files with the 'wrong' md5
    keep their names and bytes, and no source is called."""
    from training import config

    monkeypatch.setattr(config, "REPO_ROOT", tmp_path)  # where relative paths (--data-root data) resolve
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    users = {name: f"the user's real {name}".encode() for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                                                     "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
    for name, content in users.items():
        (raw / name).write_bytes(content)
    other_md5 = dict.fromkeys(users, "0" * 32)  # a table these files do not match (as a test's synthetic one)
    fetched: list[Path] = []
    old_stage = recipes.Stage("bad", ("--init-from", str(tmp_path / "missing.pt"), "--output", str(tmp_path / "s1.pt")))
    argv = recipes.stage_argv(old_stage, threads=1, progress=False)
    assert "--data-root" not in argv and parse_args(argv).data_path() == tmp_path / "data"
    monkeypatch.setitem(recipes.RECIPES, "tiny-bad", (old_stage,))
    run = lambda a: cli.main(a, expected_md5=other_md5, sources=(fetched.append,))  # noqa: E731
    assert recipes.run_recipe("tiny-bad", progress=False, log=lambda s: None, run_stage=run) == 1
    assert "missing.pt: no such checkpoint" in capsys.readouterr().err
    assert sorted(p.name for p in raw.iterdir()) == sorted(users) and not fetched
    assert all((raw / name).read_bytes() == content for name, content in users.items())


def test_the_real_data_root_is_the_default_only_by_name():
    """Without --data-root a run uses the repo's data/ (the user's); tests always pass their own."""
    assert parse_args([]).data_path() == REPO_ROOT / "data"


@pytest.mark.parametrize("name", ["default", "seed"])
def test_each_recipe_evaluates_its_atlas_like_the_shipped_one(name):
    """The shipped atlas' NLL used k=1000: the recipe's last stage asks for that k, not the automatic one."""
    from common.atlas_format import load_atlas
    from common.paths import atlas_path_for

    last = parse_args(recipes.stage_argv(recipes.RECIPES[name][-1], threads=1, progress=False))
    assert last.atlas and last.force and last.resume
    assert last.final_eval_samples() == load_atlas(atlas_path_for(REPO_ROOT / "models" / f"{name}.pt")).metrics.iw_samples


@pytest.mark.parametrize("name", ["default", "seed"])
def test_each_shipped_model_is_what_its_recipe_trains(name):
    """The last stage's flags are the shipped checkpoint's training settings, and its recorded stages
    (objective, epochs, learning rate) are the recipe's stages, in order."""
    ckpt = read_checkpoint(REPO_ROOT / "models" / f"{name}.pt")
    configs = [parse_args(recipes.stage_argv(s, threads=1, progress=False)) for s in recipes.RECIPES[name]]
    want = {k: v for k, v in configs[-1].to_dict().items() if k not in NOT_TRAINING}
    # from_dict fills settings added after the model was trained with their defaults (what it ran with)
    got = {k: v for k, v in TrainConfig.from_dict(ckpt["train_config"]).to_dict().items() if k not in NOT_TRAINING}
    assert got == want
    assert configs[-1].output_path() == REPO_ROOT / "models" / f"{name}.pt"
    recorded = [(s["objective"], s["epochs"], s["lr"]) for s in stages_of(ckpt)]
    planned = [("ELBO" if c.iw_samples == 1 else f"IWAE bound (k={c.iw_samples})", c.epochs, c.lr) for c in configs]
    assert recorded == planned
