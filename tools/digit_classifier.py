"""A small digit classifier: does an image [784] in [0, 1] show a 3? (CPU, fixed seed, ~99% on MNIST test.)

A LeNet-style CNN trained once on the MNIST training set (about a minute and a half on one thread)
and cached in ``artifacts/digit_classifier.pt`` (written atomically, read back with
``torch.load(weights_only=True)``; retrained when its data md5s or training settings differ, which
replaces only that cache file). tools.recon_classifier uses it to judge VAE reconstructions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from common.fileio import atomic_write_bytes
from tools import REPO_ROOT

NUM_CLASSES = 10
CLASSIFIER_FORMAT = 1
DEFAULT_CLASSIFIER_PATH: Path = REPO_ROOT / "artifacts" / "digit_classifier.pt"
DEFAULT_ARCH: dict[str, int] = {"channels1": 8, "channels2": 16, "hidden": 64}
DEFAULT_TRAIN: dict[str, Any] = {"epochs": 3, "batch_size": 128, "max_lr": 3e-3, "seed": 0}
# Usual MNIST pixel mean / std, applied inside the classifier so callers pass raw [0, 1] pixels.
PIXEL_MEAN, PIXEL_STD = 0.1307, 0.3081


class DigitClassifier(nn.Module):
    """LeNet-style CNN: x [B, 784] in [0, 1] -> class logits [B, 10].

    conv5x5(1->c1) ReLU maxpool2 -> conv5x5(c1->c2) ReLU maxpool2 -> [B, c2*7*7] -> hidden ReLU -> 10.
    """

    def __init__(self, channels1: int = 8, channels2: int = 16, hidden: int = 64) -> None:
        super().__init__()
        self.arch = {"channels1": int(channels1), "channels2": int(channels2), "hidden": int(hidden)}
        self.features = nn.Sequential(
            nn.Conv2d(1, channels1, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels1, channels2, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(channels2 * 7 * 7, hidden), nn.ReLU(), nn.Linear(hidden, NUM_CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, 784] (or [B, 1, 28, 28]) in [0, 1] -> logits [B, 10]."""
        x = (x.float().reshape(-1, 1, 28, 28) - PIXEL_MEAN) / PIXEL_STD
        return self.head(self.features(x))


@torch.no_grad()
def predict_proba(classifier: nn.Module, x: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
    """x [N, 784] in [0, 1] -> softmax class probabilities [N, 10] (classifier put in eval mode)."""
    classifier.eval()
    parts = [F.softmax(classifier(x[i : i + batch_size]), dim=1) for i in range(0, len(x), batch_size)]
    return torch.cat(parts) if parts else torch.empty(0, NUM_CLASSES)


def predict(classifier: nn.Module, x: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
    """x [N, 784] in [0, 1] -> predicted class int64 [N]."""
    return predict_proba(classifier, x, batch_size).argmax(1)


def accuracy(classifier: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 2000) -> float:
    """Fraction of x [N, 784] whose predicted class equals y [N] (int64); N must be > 0."""
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(f"need as many labels as images (> 0), got {len(x)} images and {len(y)} labels")
    return float((predict(classifier, x, batch_size) == y.long()).float().mean())


def per_class_accuracy(pred: torch.Tensor, y: torch.Tensor) -> list[float | None]:
    """pred, y int64 [N] -> accuracy of each class 0..9 (None for a class absent from y)."""
    total = torch.bincount(y.long(), minlength=NUM_CLASSES)
    right = torch.bincount(y.long()[pred == y], minlength=NUM_CLASSES)
    return [float(r) / float(t) if t > 0 else None for r, t in zip(right.tolist(), total.tolist())]


def train_classifier(
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int = DEFAULT_TRAIN["epochs"],
    batch_size: int = DEFAULT_TRAIN["batch_size"],
    max_lr: float = DEFAULT_TRAIN["max_lr"],
    seed: int = DEFAULT_TRAIN["seed"],
    arch: Mapping[str, int] = DEFAULT_ARCH,
    log: Callable[[str], None] | None = None,
) -> DigitClassifier:
    """Train a DigitClassifier on x [N, 784] in [0, 1], y int64 [N]: Adam + one-cycle LR, cross-entropy.

    Deterministic for a given seed and thread count (own generator for the shuffles; the global
    RNG is forked, so the caller's random state is left untouched). Returns the model in eval mode.
    """
    if len(x) == 0 or len(x) != len(y) or epochs < 1:
        raise ValueError(f"need N > 0 images with N labels and epochs >= 1 (got {len(x)}, {len(y)}, {epochs})")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DigitClassifier(**arch)
    steps_per_epoch = math.ceil(len(x) / batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=max_lr / 25)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=epochs * steps_per_epoch)
    g = torch.Generator(device="cpu").manual_seed(seed)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=g)
        total = 0.0
        for i in range(steps_per_epoch):
            idx = perm[i * batch_size : (i + 1) * batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx].long())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        if log:
            log(f"classifier epoch {epoch + 1}/{epochs}: train loss {total / len(x):.4f}")
    return model.eval()


def save_classifier(path: str | Path, model: DigitClassifier, meta: Mapping[str, Any]) -> None:
    """Atomically save weights + plain-type metadata (readable with weights_only=True)."""
    payload = {"format_version": CLASSIFIER_FORMAT, "arch": dict(model.arch), "state_dict": model.state_dict(), **meta}
    atomic_write_bytes(path, lambda f: torch.save(payload, f))


def load_classifier(path: str | Path) -> tuple[DigitClassifier, dict[str, Any]]:
    """(classifier in eval mode, metadata dict) from a file written by save_classifier.

    Raises ValueError if the file is unreadable, not a classifier of this format, or mismatched.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - truncated / foreign / pickled-code files all mean "retrain"
        raise ValueError(f"{path}: unreadable classifier file: {e}") from e
    if not isinstance(payload, dict) or payload.get("format_version") != CLASSIFIER_FORMAT or "state_dict" not in payload:
        raise ValueError(f"{path}: not a digit classifier of format {CLASSIFIER_FORMAT}")
    try:
        model = DigitClassifier(**payload["arch"])
        model.load_state_dict(payload["state_dict"], strict=True)
    except (TypeError, RuntimeError, KeyError) as e:
        raise ValueError(f"{path}: weights do not fit the stored architecture: {e}") from e
    meta = {k: v for k, v in payload.items() if k not in ("state_dict", "format_version")}
    return model.eval(), meta


def get_classifier(
    path: str | Path = DEFAULT_CLASSIFIER_PATH,
    data_root: str | Path | None = None,
    train_config: Mapping[str, Any] = DEFAULT_TRAIN,
    arch: Mapping[str, int] = DEFAULT_ARCH,
    retrain: bool = False,
    log: Callable[[str], None] = print,
) -> tuple[DigitClassifier, dict[str, Any]]:
    """The cached classifier at `path` if it was trained on these exact MNIST files with these
    settings, else a freshly trained one (saved to `path`). Metadata: arch, train_config, data_md5,
    test_accuracy, train_seconds, train_size."""
    from training import data

    root = data.DEFAULT_ROOT if data_root is None else Path(data_root)
    md5 = dict(data.ensure_mnist(root, data.MNIST_FILES).md5)
    wanted = {"arch": dict(arch), "train_config": dict(train_config), "data_md5": md5}
    path = Path(path)
    if path.is_file() and not retrain:
        try:
            model, meta = load_classifier(path)
            stale = [k for k, v in wanted.items() if meta.get(k) != v]
            if not stale:
                return model, meta
            log(f"classifier cache {path} is stale ({', '.join(stale)} differ): retraining")
        except ValueError as e:
            log(f"classifier cache unusable ({e}): retraining")
    train_x, train_y = data.load_mnist(root, train=True, expected_md5=data.MNIST_FILES)
    test_x, test_y = data.load_mnist(root, train=False, expected_md5=data.MNIST_FILES)
    log(f"training the digit classifier on {len(train_x)} images ({train_config['epochs']} epochs, CPU) ...")
    t0 = time.perf_counter()
    model = train_classifier(train_x, train_y, arch=arch, log=log, **train_config)
    seconds = time.perf_counter() - t0
    meta = {**wanted, "test_accuracy": accuracy(model, test_x, test_y), "train_seconds": seconds, "train_size": len(train_x)}
    save_classifier(path, model, meta)
    log(f"classifier: test accuracy {meta['test_accuracy']:.2%}, trained in {seconds:.0f} s -> {path}")
    return model, meta
