"""Do decoded posterior means keep their digit? A fixed digit classifier judges VAE reconstructions.

    python -m tools.recon_classifier CHECKPOINT [CHECKPOINT ...] [--json] [--prior-samples N]

A small CNN is trained once on the MNIST training set (CPU, fixed seed, ~99% test accuracy, about
a minute and a half on one thread) and cached in ``artifacts/digit_classifier.pt`` (written
atomically, read back with ``torch.load(weights_only=True)``; retrained when its data md5s or
training settings differ). For every checkpoint it then reports the classifier's accuracy on

  * the original test images x [N, 784], and
  * their reconstructions sigmoid(decode(mu(x))) from the posterior means (deterministic),

plus their agreement (same predicted class) and the worst class. ``--prior-samples N`` also
classifies N decodes of z ~ N(0, I): no labels exist there, so it reports the predicted-class
histogram and mean confidence only.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from tools import REPO_ROOT, prior_sample_means, reconstruct_means
from training.checkpoint import CheckpointError, load_vae
from common.fileio import atomic_write_bytes

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


def evaluate_checkpoint(
    checkpoint: str | Path,
    classifier: nn.Module,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    prior_samples: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """Classifier results for one VAE checkpoint on test_x [N, 784], test_y int64 [N].

    Keys: checkpoint, latent_dim, original_accuracy, recon_accuracy (on sigmoid(decode(mu))),
    agreement (same class predicted for x and its reconstruction), recon_accuracy_per_class [10],
    and with prior_samples > 0: prior {n, class_counts [10], mean_confidence}.
    Raises CheckpointError for an unusable checkpoint.
    """
    model = load_vae(checkpoint)
    pred_x = predict(classifier, test_x)
    pred_r = predict(classifier, reconstruct_means(model, test_x))
    y = test_y.long()
    result: dict[str, Any] = {
        "checkpoint": str(checkpoint),
        "latent_dim": model.latent_dim,
        "n": len(test_x),
        "original_accuracy": float((pred_x == y).float().mean()),
        "recon_accuracy": float((pred_r == y).float().mean()),
        "agreement": float((pred_r == pred_x).float().mean()),
        "recon_accuracy_per_class": per_class_accuracy(pred_r, y),
    }
    if prior_samples > 0:
        proba = predict_proba(classifier, prior_sample_means(model, prior_samples, seed))
        result["prior"] = {
            "n": prior_samples,
            "class_counts": torch.bincount(proba.argmax(1), minlength=NUM_CLASSES).tolist(),
            "mean_confidence": float(proba.max(1).values.mean()),
        }
    return result


def format_table(results: Sequence[Mapping[str, Any]]) -> str:
    """Plain-text table, one row per evaluate_checkpoint result (rows with "error" shown as such)."""
    head = ["checkpoint", "D", "original", "recon(mu)", "agree", "worst class"]
    if any("prior" in r for r in results):
        head.append("prior samples (predicted-class counts 0-9)")
    rows = []
    for r in results:
        if "error" in r:
            rows.append([r["checkpoint"], "-", "-", "-", "-", "-", f"error: {r['error']}"])
            continue
        per = [(a, c) for c, a in enumerate(r["recon_accuracy_per_class"]) if a is not None]
        worst = min(per) if per else None
        row = [r["checkpoint"], str(r["latent_dim"]), f"{r['original_accuracy']:.2%}", f"{r['recon_accuracy']:.2%}",
               f"{r['agreement']:.2%}", f"{worst[1]}: {worst[0]:.1%}" if worst else "-"]
        if "prior" in r:
            p = r["prior"]
            row.append(f"n={p['n']} mean conf {p['mean_confidence']:.2f} {p['class_counts']}")
        rows.append(row)
    width = [max(len(str(x[i])) for x in [head, *rows] if i < len(x)) for i in range(len(head))]
    fmt = lambda cells: "  ".join(str(c).ljust(width[i]) if i < len(width) else str(c) for i, c in enumerate(cells)).rstrip()  # noqa: E731
    return "\n".join([fmt(head), *(fmt(r) for r in rows)])


def main(argv: Sequence[str] | None = None) -> int:
    """CLI; returns 0, 1 if a checkpoint could not be read, 2 if --min-recon-accuracy failed."""
    p = argparse.ArgumentParser(prog="python -m tools.recon_classifier", description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="+", type=Path, metavar="CHECKPOINT")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--data-root", type=Path, default=None, help="MNIST root (default: the project's data/)")
    p.add_argument("--classifier", type=Path, default=DEFAULT_CLASSIFIER_PATH, help="classifier cache file")
    p.add_argument("--retrain", action="store_true", help="train the classifier even if the cache is valid")
    p.add_argument("--epochs", type=int, default=DEFAULT_TRAIN["epochs"], help="classifier training epochs")
    p.add_argument("--seed", type=int, default=DEFAULT_TRAIN["seed"], help="classifier seed and prior-sample seed")
    p.add_argument("--prior-samples", type=int, default=0, help="also classify N decodes of z ~ N(0, I)")
    p.add_argument("--min-recon-accuracy", type=float, default=None, help="exit 2 if any recon accuracy is below this (0-1)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = p.parse_intermixed_args(argv)  # CHECKPOINTs may come before and after options
    torch.set_num_threads(max(1, args.threads))

    from training import data

    # Progress goes to stderr so --json output stays parseable.
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    root = data.DEFAULT_ROOT if args.data_root is None else args.data_root
    train_config = {**DEFAULT_TRAIN, "epochs": args.epochs, "seed": args.seed}
    try:
        clf, meta = get_classifier(args.classifier, root, train_config, retrain=args.retrain, log=log)
        test_x, test_y = data.load_mnist(root, train=False, expected_md5=data.MNIST_FILES)
    except (data.MnistUnavailableError, data.IdxFormatError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    results: list[dict[str, Any]] = []
    for ckpt in args.checkpoints:
        try:
            results.append(evaluate_checkpoint(ckpt, clf, test_x, test_y, args.prior_samples, args.seed))
        except CheckpointError as e:
            print(f"error: {e}", file=sys.stderr)
            results.append({"checkpoint": str(ckpt), "error": str(e)})
    info = {"path": str(args.classifier), "test_accuracy": meta["test_accuracy"], "train_seconds": meta["train_seconds"],
            "train_size": meta["train_size"], "arch": meta["arch"], "train_config": meta["train_config"]}
    if args.json:
        print(json.dumps({"classifier": info, "checkpoints": results}, indent=2))
    else:
        print(f"digit classifier {args.classifier}: test accuracy {meta['test_accuracy']:.2%} "
              f"(trained on {meta['train_size']} images in {meta['train_seconds']:.0f} s)")
        print(format_table(results))
    if any("error" in r for r in results):
        return 1
    if args.min_recon_accuracy is not None and any(r["recon_accuracy"] < args.min_recon_accuracy for r in results):
        print(f"FAIL: a reconstruction accuracy is below {args.min_recon_accuracy:.2%}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
