"""The atlas contract: a damaged or mismatched atlas is refused at load time with one clear message.

Each case starts from the committed tiny atlas (tests/assets/tiny_models), breaks one thing in a
copy in tmp_path, and checks the app's loader names what is wrong instead of failing later.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from common.atlas_format import FORMAT_VERSION, AtlasError, load_atlas, save_atlas
from common.paths import atlas_path_for
from explorer import bundle

Arrays = dict[str, np.ndarray]


@pytest.fixture
def model_copy(tmp_path: Path, tiny_models_dir: Path) -> Path:
    """A private copy of the tiny checkpoint and its atlas; returns the checkpoint path."""
    ckpt = tmp_path / "m.pt"
    shutil.copy(tiny_models_dir / "default.pt", ckpt)
    shutil.copy(atlas_path_for(tiny_models_dir / "default.pt"), atlas_path_for(ckpt))
    return ckpt


def rewrite(ckpt: Path, change: Callable[[Arrays], None]) -> None:
    """Apply `change` to the raw arrays of ckpt's atlas and write them back (no validation on the way)."""
    path = atlas_path_for(ckpt)
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _set(key: str, fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[Arrays], None]:
    def change(a: Arrays) -> None:
        a[key] = fn(a[key])
    return change


def _config(fn: Callable[[dict], None]) -> Callable[[Arrays], None]:
    def change(a: Arrays) -> None:
        doc = json.loads(str(a["checkpoint_json"]))
        fn(doc)
        a["checkpoint_json"] = np.asarray(json.dumps(doc))
    return change


def _narrow_decoder(a: Arrays) -> None:
    # 16 hidden units instead of the config's 32: the matrices still multiply, the digits would be wrong.
    a["w__decoder_body.0.weight"] = a["w__decoder_body.0.weight"][:16]
    a["w__decoder_body.0.bias"] = a["w__decoder_body.0.bias"][:16]
    a["w__decoder_out.weight"] = a["w__decoder_out.weight"][:, :16]


def _transpose_head(a: Arrays) -> None:
    a["w__mu_head.weight"] = np.ascontiguousarray(a["w__mu_head.weight"].T)


BROKEN = {
    "5 labels for 300 codes": (_set("labels", lambda x: x[:5]), "labels has shape [5]"),
    "a short t-SNE": (_set("tsne", lambda x: x[:-1]), "tsne has shape [299, 2]"),
    "a short KL array": (_set("kl_per_dim", lambda x: x[:3]), "kl_per_dim has shape [3]"),
    "wrong pca_components": (_set("pca_components", lambda x: x.T), "pca_components has shape [8, 2]"),
    "NaN in the codes": (_set("mu", lambda x: np.where(np.arange(x.size).reshape(x.shape) == 7, np.nan, x)), "mu holds NaN"),
    "labels outside 0..9": (_set("labels", lambda x: x + 10), "digits 0..9"),
    "images as floats": (_set("images", lambda x: x.astype(np.float32)), "images has dtype float32"),
    "codes of another size than the model": (_config(lambda d: d["model_config"].update(latent_dim=4)), "latent_dim=4"),
    "no model config": (_config(lambda d: d.pop("model_config")), "no model_config"),
    "broken JSON": (lambda a: a.update(metrics_json=np.asarray("{not json")), "metrics_json is not valid JSON"),
    "a missing array": (lambda a: a.pop("mu_variance"), "missing mu_variance"),
    "a newer format": (lambda a: a.update(format_version=np.asarray(FORMAT_VERSION + 1)), "newer than this code reads"),
    "NaN weights": (_set("w__decoder_out.bias", lambda x: np.full_like(x, np.nan)), "NaN"),
    "weights narrower than the config, that still multiply": (_narrow_decoder, "decoder_body.0.weight has shape [16, 8]"),
    "a transposed head": (_transpose_head, "mu_head.weight has shape [32, 8]"),
    "a missing weight": (lambda a: a.pop("w__encoder.0.bias"), "missing ['encoder.0.bias']"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_atlas_is_refused_with_one_clear_message(model_copy, case):
    change, expected = BROKEN[case]
    rewrite(model_copy, change)
    with pytest.raises(bundle.ModelUnavailableError) as err:
        bundle.load_explorer_model(model_copy)
    message = str(err.value)
    assert expected in message and "m.atlas.npz" in message and "python -m training.export" in message
    assert "\n" not in message and "Traceback" not in message


def test_garbage_and_truncated_files_are_refused(model_copy):
    path = atlas_path_for(model_copy)
    good = path.read_bytes()
    for data in (b"not a zip at all", good[: len(good) // 2]):
        path.write_bytes(data)
        with pytest.raises(bundle.ModelUnavailableError, match="cannot be used: not a readable .npz"):
            bundle.load_explorer_model(model_copy)


def test_a_pickled_array_is_never_unpickled(model_copy):
    rewrite(model_copy, lambda a: a.update(mu=np.array([{"evil": 1}], dtype=object)))
    with pytest.raises(bundle.ModelUnavailableError, match="not a readable .npz"):
        bundle.load_explorer_model(model_copy)


def test_round_trip_keeps_every_array_and_writes_the_version(model_copy, tmp_path):
    atlas = load_atlas(atlas_path_for(model_copy))
    out = tmp_path / "copy.atlas.npz"
    save_atlas(out, atlas)
    again = load_atlas(out)
    for name in ("mu", "logvar", "labels", "images", "pca", "pca_components", "tsne", "kl_per_dim", "mu_variance"):
        assert np.array_equal(getattr(again, name), getattr(atlas, name)), name
    assert again.weights.keys() == atlas.weights.keys() and again.metrics == atlas.metrics
    with np.load(out, allow_pickle=False) as z:
        assert int(z["format_version"]) == FORMAT_VERSION


def test_files_without_a_version_key_read_as_version_1(model_copy):
    rewrite(model_copy, lambda a: a.pop("format_version", None))
    assert load_atlas(atlas_path_for(model_copy)).format_version == 1


def test_save_refuses_an_inconsistent_atlas_and_keeps_the_old_file(model_copy, tmp_path):
    path = atlas_path_for(model_copy)
    before = path.read_bytes()
    atlas = load_atlas(path)
    broken = type(atlas)(**{**atlas.__dict__, "tsne": atlas.tsne[:10]})
    with pytest.raises(AtlasError, match="tsne"):
        save_atlas(path, broken)
    assert path.read_bytes() == before


# --- training.export: writes the atlas of a checkpoint ----------------------------------------

@pytest.fixture
def trained_ckpt(tmp_path, tiny_tensors, one_torch_thread) -> Path:
    from training.config import TrainConfig
    from training.train import train

    tr_x, _, te_x, _ = tiny_tensors
    cfg = TrainConfig(epochs=1, batch_size=32, progress=False, output=str(tmp_path / "m.pt"), warmup_epochs=1.0,
                      encoder_hidden=(32,), decoder_hidden=(32,), latent_dim=4)
    return train(cfg, tr_x, te_x, log=lambda s: None).best_path


def export(ckpt: Path, md5: dict[str, str], *flags: str, root: Path) -> int:
    from training import export as export_cli

    return export_cli.main([str(ckpt), *flags, "--data-root", str(root)], expected_md5=md5, sources=())


def test_export_cli_writes_atlas_tied_to_checkpoint(tiny_mnist, trained_ckpt, capsys):
    from common.fileio import file_sha256

    root, md5 = tiny_mnist
    assert export(trained_ckpt, md5, "--iw-samples", "0", root=root) == 0
    atlas = load_atlas(atlas_path_for(trained_ckpt))
    assert atlas.checkpoint_sha256 == file_sha256(trained_ckpt) and atlas.format_version == FORMAT_VERSION
    assert atlas.pca.shape == (64, 2) and atlas.labels.dtype == np.uint8 and atlas.metrics.nll is None
    # PCA coordinates are the exact linear projection of mu
    assert np.allclose((atlas.mu - atlas.pca_mean) @ atlas.pca_components.T, atlas.pca, atol=1e-4)
    assert "latent atlas -> " in capsys.readouterr().out


def test_export_reuse_keeps_tsne_and_metrics_of_same_checkpoint(tiny_mnist, trained_ckpt):
    root, md5 = tiny_mnist
    path = atlas_path_for(trained_ckpt)
    assert export(trained_ckpt, md5, "--iw-samples", "3", root=root) == 0
    atlas = load_atlas(path)
    rewrite(trained_ckpt, _set("tsne", lambda t: t + 100.0))  # a mark that only reuse can carry over
    assert export(trained_ckpt, md5, "--reuse", root=root) == 0
    reused = load_atlas(path)
    assert np.allclose(reused.tsne, atlas.tsne + 100.0) and reused.metrics == atlas.metrics
    assert set(reused.weights) == set(atlas.weights)
    trained_ckpt.write_bytes(trained_ckpt.read_bytes() + b"\0")  # another checkpoint: nothing may be reused
    assert export(trained_ckpt, md5, "--reuse", "--iw-samples", "0", root=root) == 0
    fresh = load_atlas(path)
    assert np.abs(fresh.tsne).max() < 100.0 + np.abs(atlas.tsne).max() - 50 and fresh.metrics.nll is None


def test_export_of_a_bad_checkpoint_touches_no_data(tmp_path, capsys):
    (tmp_path / "bad.pt").write_text("not a checkpoint")
    called: list[Path] = []
    from training import export as export_cli

    assert export_cli.main([str(tmp_path / "bad.pt"), "--data-root", str(tmp_path / "data")],
                           expected_md5={}, sources=(called.append,)) == 1
    assert "bad.pt" in capsys.readouterr().err and not called and not (tmp_path / "data").exists()
    assert not atlas_path_for(tmp_path / "bad.pt").exists()
