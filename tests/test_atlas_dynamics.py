"""The atlas carries the training dynamics: export reads the sidecar, keeps an old atlas's record when
the sidecar is gone, refuses another run's, and a damaged dyn_ array is refused with one message.
Atlases without dynamics (every version-1 file) still load."""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from common.atlas_format import FORMAT_VERSION, load_atlas, save_atlas
from common.dynamics_format import FIELDS, Dynamics, read_dynamics
from common.paths import REPO_ROOT, atlas_path_for, dynamics_path_for
from explorer import bundle
from tests.conftest import tiny_tensor_set, write_tiny_mnist
from tests.test_atlas import rewrite

Arrays = dict[str, np.ndarray]


def train_tiny(folder: Path, tiny_tensors, epochs: int = 3, **kw):
    from training.config import TrainConfig
    from training.train import train

    tr_x, _, te_x, _ = tiny_tensors
    cfg = TrainConfig(epochs=epochs, batch_size=32, progress=False, output=str(folder / "m.pt"), warmup_epochs=1.0,
                      encoder_hidden=(32,), decoder_hidden=(32,), latent_dim=4, **kw)
    return train(cfg, tr_x, te_x, log=lambda s: None)


def export(ckpt: Path, md5: dict[str, str], *flags: str, root: Path) -> int:
    from training import export as export_cli

    return export_cli.main([str(ckpt), "--iw-samples", "0", *flags, "--data-root", str(root)], expected_md5=md5, sources=())


def same(a: Dynamics, b: Dynamics) -> bool:
    return all(np.array_equal(getattr(a, name), getattr(b, name)) for name in FIELDS)


@pytest.fixture(scope="module")
def _exported_once(tmp_path_factory) -> tuple[Path, Path]:
    """Trains and exports the tiny checkpoint once for the module: (run folder, data root). Its files
    are never changed; `exported` hands each test a copy."""
    torch = pytest.importorskip("torch")
    folder = tmp_path_factory.mktemp("exported")
    root, md5 = write_tiny_mnist(folder)
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: extra threads only stall on a shared CPU
    try:
        ckpt = train_tiny(folder / "run", tiny_tensor_set()).best_path
        assert export(ckpt, md5, root=root) == 0
    finally:
        torch.set_num_threads(before)
    return ckpt.parent, root


@pytest.fixture
def exported(_exported_once, tmp_path, tiny_mnist) -> Path:
    """A 3-epoch tiny checkpoint with its sidecar and an exported atlas (the synthetic test set of tiny_mnist
    is tiny_tensors' test set), copied into this test's tmp_path; returns the checkpoint."""
    run, _ = _exported_once
    copy = shutil.copytree(run, tmp_path / "run")
    return copy / "m.pt"


def test_export_puts_the_checkpoints_dynamics_into_the_atlas(exported, tiny_mnist, capsys):
    atlas = load_atlas(atlas_path_for(exported))
    assert atlas.format_version == FORMAT_VERSION == 2 and atlas.dynamics is not None
    assert same(atlas.dynamics, read_dynamics(dynamics_path_for(exported)))
    capsys.readouterr()
    assert export(exported, tiny_mnist[1], "--reuse", root=tiny_mnist[0]) == 0  # from the sidecar again
    assert "training dynamics of 3 epochs, 4 snapshots" in capsys.readouterr().out
    assert same(load_atlas(atlas_path_for(exported)).dynamics, atlas.dynamics)
    # what the app will read: the explorer model's atlas
    model = bundle.load_explorer_model(exported)
    assert model.atlas.dynamics is not None and model.atlas.dynamics.latent_dim == model.latent_dim == 4
    assert model.atlas.dynamics.test_size == model.atlas.size
    again = atlas_path_for(exported).with_name("copy.atlas.npz")
    save_atlas(again, atlas)
    assert same(load_atlas(again).dynamics, atlas.dynamics)


@pytest.mark.slow  # exports the tiny model's atlas again
def test_export_keeps_an_old_atlas_record_when_the_sidecar_is_gone(exported, tiny_mnist, capsys):
    root, md5 = tiny_mnist
    recorded = load_atlas(atlas_path_for(exported)).dynamics
    dynamics_path_for(exported).unlink()  # a fresh clone: sidecars are not committed
    for flags in (("--reuse",), ()):
        capsys.readouterr()
        assert export(exported, md5, *flags, root=root) == 0
        assert same(load_atlas(atlas_path_for(exported)).dynamics, recorded), flags
        assert "keeping the training dynamics of the existing atlas" in capsys.readouterr().out
    exported.write_bytes(exported.read_bytes() + b"\0")  # other checkpoint bytes: the old record is not theirs
    assert export(exported, md5, "--reuse", root=root) == 0
    assert load_atlas(atlas_path_for(exported)).dynamics is None


@pytest.mark.slow  # exports the tiny model's atlas again
def test_another_runs_sidecar_is_left_out(tmp_path, exported, tiny_tensors, tiny_mnist, capsys):
    root, md5 = tiny_mnist
    other = train_tiny(tmp_path / "other", tiny_tensors, seed=5)
    atlas_path_for(exported).unlink()
    shutil.copy(other.dynamics_path, dynamics_path_for(exported))
    capsys.readouterr()
    assert export(exported, md5, root=root) == 0
    assert load_atlas(atlas_path_for(exported)).dynamics is None
    assert "does not belong to m.pt: their losses are not the checkpoint's history" in capsys.readouterr().out


def test_the_best_checkpoint_of_a_killed_run_gets_the_record_up_to_its_history(tmp_path, tiny_tensors, tiny_mnist,
                                                                              one_torch_thread):
    from training.checkpoint import read_checkpoint

    steps = math.ceil(len(tiny_tensors[0]) / 32)

    def die_in_epoch_4(step: int, model) -> None:
        if step == 3 * steps + 1:
            raise KeyboardInterrupt

    from training.config import TrainConfig
    from training.train import train

    tr_x, _, te_x, _ = tiny_tensors
    cfg = TrainConfig(epochs=4, batch_size=32, progress=False, output=str(tmp_path / "m.pt"), warmup_epochs=1.0,
                      encoder_hidden=(32,), decoder_hidden=(32,), latent_dim=4)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tr_x, te_x, on_step=die_in_epoch_4, log=lambda s: None)
    best = cfg.output_path()
    history = read_checkpoint(best)["history"]  # up to the epoch that was best when it was written
    root, md5 = tiny_mnist
    assert export(best, md5, root=root) == 0
    dyn = load_atlas(atlas_path_for(best)).dynamics
    assert dyn is not None and dyn.epoch.tolist() == [h["epoch"] for h in history]
    assert read_dynamics(dynamics_path_for(best)).num_epochs == 3


def _set(key: str, fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[Arrays], None]:
    def change(a: Arrays) -> None:
        a[key] = fn(a[key].copy())
    return change


def _last(value: int) -> Callable[[np.ndarray], np.ndarray]:
    def fn(x: np.ndarray) -> np.ndarray:
        x[-1] = value
        return x
    return fn


BROKEN = {
    "NaN in a snapshot's codes": (_set("dyn_snapshot_mu", lambda x: x * np.nan), "snapshot_mu holds NaN"),
    "another latent size": (_set("dyn_kl_per_dim", lambda x: x[:, :3]), "describe 3 latent units, the model has 4"),
    "sigma of the wrong size": (_set("dyn_sigma_mean", lambda x: x[:, :3]), "sigma_mean has shape [3, 3]"),
    "a gap in the epochs": (_set("dyn_epoch", _last(9)), "epoch must count up by one"),
    "a stage skipped": (_set("dyn_stage", _last(2)), "stage must start >= 0 and go up by at most one"),
    "a code index outside the test set": (_set("dyn_code_index", _last(64)), "increasing indices into the 64 test digits"),
    "a snapshot after the last epoch": (_set("dyn_snapshot_epoch", _last(9)), "outside the recorded 0..3"),
    "pixels as floats": (_set("dyn_snapshot_prior", lambda x: x.astype(np.float32)), "snapshot_prior has dtype float32"),
    "another test set": (lambda a: a.update(dyn_test_size=np.asarray(100)), "a test set of 100 digits, the atlas holds 64"),
    "a missing array": (lambda a: a.pop("dyn_prior_z"), "incomplete (missing dyn_prior_z)"),
    "more active units than units": (_set("dyn_active_units", _last(5)), "active_units must be counts in 0..4"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_dynamics_are_refused_with_one_clear_message(exported, case):
    change, expected = BROKEN[case]
    rewrite(exported, change)
    with pytest.raises(bundle.ModelUnavailableError) as err:
        bundle.load_explorer_model(exported)
    message = str(err.value)
    assert "training dynamics" in message and expected in message and "python -m training.export" in message
    assert "\n" not in message


@pytest.mark.slow  # exports the tiny model's atlas again
def test_atlases_without_dynamics_still_load(tiny_models_dir, exported, tiny_mnist):
    tiny = bundle.load_explorer_model(tiny_models_dir / "default.pt")  # a version-1 file
    assert tiny.atlas.format_version == 1 and tiny.atlas.dynamics is None
    for name in ("default", "seed"):  # the shipped atlases (read only) were retrained with their record
        path = atlas_path_for(REPO_ROOT / "models" / f"{name}.pt")
        assert load_atlas(path).dynamics is not None
    dynamics_path_for(exported).unlink()
    atlas_path_for(exported).unlink()
    root, md5 = tiny_mnist
    assert export(exported, md5, root=root) == 0  # a version-2 atlas without a record
    assert bundle.load_explorer_model(exported).atlas.dynamics is None
    with np.load(atlas_path_for(exported), allow_pickle=False) as z:
        assert not [k for k in z.files if k.startswith("dyn_")] and int(z["format_version"]) == 2


def test_a_subset_atlas_keeps_the_followed_digits_and_evaluates_all(tmp_path, tiny_tensors, tiny_mnist, one_torch_thread):
    """--atlas-subset (the beta sweep's small atlases): the atlas holds only the digits the dynamics follow,
    in test-set order, with their test-set indices; the metrics still cover the whole test set, and
    export keeps the checkpoint's choice unless told otherwise."""
    from training.dynamics import followed_digits

    root, md5 = tiny_mnist
    ckpt = train_tiny(tmp_path / "run", tiny_tensors, atlas_subset=True).best_path
    assert export(ckpt, md5, root=root) == 0
    atlas = bundle.load_explorer_model(ckpt).atlas
    kept = followed_digits(64)
    assert kept.tolist() == [*range(8), *range(10, 61, 5)]
    assert atlas.size == len(kept) and atlas.test_index.tolist() == kept.tolist()
    te_x = tiny_tensors[2]
    np.testing.assert_array_equal(atlas.images, np.rint(te_x[kept].numpy() * 255).astype(np.uint8))
    assert atlas.labels.tolist() == tiny_tensors[3][kept].tolist()
    dyn = atlas.dynamics
    assert dyn is not None and dyn.test_size == 64
    rows = atlas.rows_of(dyn.code_index)
    assert (rows >= 0).all() and atlas.test_index[rows].tolist() == dyn.code_index.tolist()
    assert atlas.rows_of(np.array([9, 11])).tolist() == [-1, -1]
    full_ckpt = train_tiny(tmp_path / "full", tiny_tensors).best_path
    assert export(full_ckpt, md5, root=root) == 0
    full = load_atlas(atlas_path_for(full_ckpt))
    assert full.size == 64 and full.test_index is None
    # same weights (atlas_subset does not change training), so the same whole-test-set figures
    assert atlas.metrics.kl == pytest.approx(full.metrics.kl, rel=1e-5)
    assert export(ckpt, md5, "--no-subset", root=root) == 0
    assert load_atlas(atlas_path_for(ckpt)).size == 64


def test_a_subset_atlas_that_lacks_a_followed_digit_is_refused(tmp_path, tiny_tensors, tiny_mnist, one_torch_thread):
    root, md5 = tiny_mnist
    ckpt = train_tiny(tmp_path / "run", tiny_tensors, atlas_subset=True).best_path
    assert export(ckpt, md5, root=root) == 0

    def drop_digit_5(a: Arrays) -> None:
        keep = a["test_index"] != 5
        for key in ("mu", "logvar", "labels", "images", "pca", "tsne", "test_index"):
            a[key] = a[key][keep]
    rewrite(ckpt, drop_digit_5)
    with pytest.raises(bundle.ModelUnavailableError, match="lacks test digits its training dynamics follow"):
        bundle.load_explorer_model(ckpt)
    rewrite(ckpt, _set("test_index", lambda x: x[::-1].copy()))
    with pytest.raises(bundle.ModelUnavailableError, match="test_index must be increasing"):
        bundle.load_explorer_model(ckpt)
