"""Self-describing checkpoints: save atomically, load with torch.load(weights_only=True) only.

A checkpoint is a dict of plain types and tensors:
  format_version, kind ("best" or "resume"), model_config, train_config, epoch, model_state,
  optimizer_state (resume files only: a best file has nothing to resume from and stays small),
  history (list of per-epoch metric dicts; test_iwae is the trained bound of an IWAE stage), best_selection_score (the kept epoch's test objective: -ELBO,
  recon + beta KL when beta != 1, or the -IWAE bound; files written before it was named for what it holds
  call it best_test_neg_elbo: read it with `selection_score_of`), data_md5, metrics (evaluation, may be {}),
  ancestors (fine-tuned models only: one `stage_summary` per earlier training stage, oldest first).
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from common.fileio import atomic_write_bytes
from training.model import VAE, ModelConfig

FORMAT_VERSION = 1
REQUIRED_KEYS = ("format_version", "model_config", "model_state")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message says which file and why."""


def resume_path(best_path: str | Path) -> Path:
    """models/vae.pt -> models/vae.last.pt (full training state for --resume)."""
    p = Path(best_path)
    return p.with_name(p.stem + ".last" + p.suffix)


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Atomically torch.save `payload` (plain types + tensors) with the format version stamped in."""
    payload = {"format_version": FORMAT_VERSION, **payload}
    atomic_write_bytes(path, lambda f: torch.save(payload, f))


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """torch.load(weights_only=True) with every failure turned into a CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # weights_only refuses anything but tensors and plain containers: a pickle that would run
        # code (or a foreign object) ends here, never executed.
        raise CheckpointError(f"{path} is not a plain-tensor checkpoint (refused by the weights-only loader): {e}") from e
    except Exception as e:  # noqa: BLE001 - garbage bytes make the unpickler raise KeyError, IndexError, ...
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or not a torch file): {e}") from e
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED_KEYS):
        raise CheckpointError(f"{path} is a torch file but not a VAE checkpoint of this project (missing {REQUIRED_KEYS})")
    if ckpt["format_version"] != FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format {ckpt['format_version']}, this code reads {FORMAT_VERSION}")
    for row in ckpt.get("history") or []:  # older files name the trained IWAE bound by its k: test_iwae_k5
        for key in [k for k in row if isinstance(k, str) and re.fullmatch(r"test_iwae_k\d+", k)]:
            row["test_iwae"] = row.pop(key)
    return ckpt


def selection_score_of(ckpt: dict[str, Any]) -> float | None:
    """The kept epoch's selection score (see the module docstring), from either name it was saved under."""
    value = ckpt.get("best_selection_score", ckpt.get("best_test_neg_elbo"))
    return None if value is None else float(value)


def stage_summary(ckpt: dict[str, Any]) -> dict[str, Any]:
    """One training stage of a checkpoint in plain types: objective, epochs run, best epoch, start lr."""
    cfg = ckpt.get("train_config") or {}
    history = ckpt.get("history") or []
    k = int(cfg.get("iw_samples", 1) or 1)
    return {
        "objective": f"IWAE bound (k={k})" if k > 1 else "ELBO",
        "epochs": len(history) or ckpt.get("epoch"),
        "best_epoch": ckpt.get("epoch"),
        "lr": cfg.get("lr"),
    }


def stages_of(ckpt: dict[str, Any]) -> list[dict[str, Any]]:
    """Every training stage behind a checkpoint, oldest first, its own last (see `stage_summary`)."""
    return [dict(a) for a in ckpt.get("ancestors") or []] + [stage_summary(ckpt)]


def model_from_checkpoint(ckpt: dict[str, Any], path: str | Path = "<checkpoint>") -> VAE:
    """Rebuild the VAE from the stored config and load its weights strictly."""
    try:
        config = ModelConfig.from_dict(dict(ckpt["model_config"]))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: invalid model config: {e}") from e
    model = VAE(config)
    try:
        model.load_state_dict(ckpt["model_state"], strict=True)
    except (RuntimeError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{path}: weights do not match the architecture its config describes: {e}") from e
    return model


def load_vae(path: str | Path) -> VAE:
    """The trained VAE from `path`, on CPU, in eval mode. Raises CheckpointError with a clear reason."""
    ckpt = read_checkpoint(path)
    return model_from_checkpoint(ckpt, path).eval()
