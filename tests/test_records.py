"""The typed records an atlas carries (common.records): every field read once, old files still read,
unknown fields kept, damaged ones refused with the field's name; and the checkpoint's renamed field."""

from __future__ import annotations

import json

import numpy as np
import pytest

from common.atlas_format import AtlasError, load_atlas, save_atlas
from common.paths import REPO_ROOT, atlas_path_for
from common.records import CheckpointSummary, Metrics, RecordError, Stage
from tests.test_atlas import rewrite

EVALUATION = {"n": 10000, "binarization_seed": 0, "neg_elbo": 98.7, "recon": 82.4, "kl": 16.3, "kl_per_dim": [2.0, 1.5],
              "mu_variance": [0.9, 0.4], "active_units": 2, "iw_samples": 1000, "nll": 93.33, "seconds": 12.5}


def test_metrics_read_every_field_and_write_back_what_they_read():
    m = Metrics.from_dict({**EVALUATION, "tsne_seconds": 80.0, "prior_recognisable": 0.72})
    assert (m.n, m.neg_elbo, m.nll, m.iw_samples, m.active_units) == (10000, 98.7, 93.33, 1000, 2)
    assert m.kl_per_dim == (2.0, 1.5) and m.proposal_scale is None and m.tsne_seconds == 80.0
    assert m.extra == {"prior_recognisable": 0.72}  # a field this code does not know is kept, not dropped
    assert Metrics.from_dict(m.to_dict()) == m and "proposal_scale" not in m.to_dict()


def test_metrics_without_an_nll_say_none():
    m = Metrics.from_dict({k: v for k, v in EVALUATION.items() if k not in ("nll", "iw_samples")})
    assert m.nll is None and m.iw_samples is None and m.neg_elbo == 98.7


@pytest.mark.parametrize(("bad", "field"), [({"nll": "93"}, "nll"), ({"active_units": 2.5}, "active_units"),
                                            ({"kl_per_dim": 3}, "kl_per_dim"), ({"kl": float("nan")}, "kl"),
                                            ({"n": True}, "n")])
def test_damaged_metrics_are_refused_naming_the_field(bad, field):
    with pytest.raises(RecordError, match=field):
        Metrics.from_dict({**EVALUATION, **bad})


def test_the_checkpoint_summary_reads_the_old_name_of_the_selection_score():
    old = {"model_config": {"latent_dim": 8}, "train_config": {"beta": 2, "warmup_epochs": 10, "preset": "seed"},
           "best_epoch": 59, "epochs_trained": 60, "best_test_neg_elbo": 114.9,
           "stages": [{"objective": "ELBO", "epochs": 60, "best_epoch": 59, "lr": 0.001}]}
    info = CheckpointSummary.from_dict(old)
    assert info.best_selection_score == 114.9 and info.beta == 2.0 and info.warmup_epochs == 10.0
    assert info.preset == "seed" and info.stages == (Stage("ELBO", 60, 59, 0.001),) and info.extra == {}
    written = info.to_dict()
    assert written["best_selection_score"] == 114.9 and "best_test_neg_elbo" not in written
    assert CheckpointSummary.from_dict(written) == info


def test_the_shipped_atlases_read_as_records():
    atlas = load_atlas(atlas_path_for(REPO_ROOT / "models" / "default.pt"))
    assert isinstance(atlas.metrics, Metrics) and isinstance(atlas.checkpoint, CheckpointSummary)
    assert atlas.metrics.nll is not None and len(atlas.metrics.kl_per_dim) == atlas.latent_dim
    assert [s.objective for s in atlas.checkpoint.stages] == ["ELBO", "IWAE bound (k=5)"]
    assert atlas.checkpoint.best_selection_score is not None


def test_an_atlas_with_a_damaged_record_is_refused(tiny_models_dir, tmp_path):
    atlas = load_atlas(tiny_models_dir / "default.atlas.npz")
    ckpt = tmp_path / "x.pt"  # rewrite() takes the checkpoint and changes its atlas
    path = atlas_path_for(ckpt)
    save_atlas(path, atlas)
    assert load_atlas(path).metrics == atlas.metrics and load_atlas(path).checkpoint == atlas.checkpoint

    def damage(arrays):
        metrics = json.loads(str(arrays["metrics_json"]))
        metrics["neg_elbo"] = "lots"
        arrays["metrics_json"] = np.asarray(json.dumps(metrics))

    rewrite(ckpt, damage)
    with pytest.raises(AtlasError, match="neg_elbo"):
        load_atlas(path)


def test_old_checkpoints_read_their_selection_score_and_iwae_rows(tmp_path):
    torch = pytest.importorskip("torch")
    from training.checkpoint import read_checkpoint, selection_score_of

    path = tmp_path / "old.pt"
    torch.save({"format_version": 1, "model_config": {}, "model_state": {}, "best_test_neg_elbo": 97.5,
                "history": [{"epoch": 1, "test_neg_elbo": 99.0, "test_iwae_k5": 96.0}]}, path)
    ckpt = read_checkpoint(path)
    assert selection_score_of(ckpt) == 97.5
    assert ckpt["history"] == [{"epoch": 1, "test_neg_elbo": 99.0, "test_iwae": 96.0}]
