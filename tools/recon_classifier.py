"""Do decoded posterior means keep their digit? A fixed digit classifier judges VAE reconstructions.

    python -m tools.recon_classifier CHECKPOINT [CHECKPOINT ...] [--json] [--prior-samples N]

The classifier is tools.digit_classifier (a small CNN trained once and cached in
``artifacts/digit_classifier.pt``). For every checkpoint this reports its accuracy on

  * the original test images x [N, 784], and
  * their reconstructions sigmoid(decode(mu(x))) from the posterior means (deterministic),

plus their agreement (same predicted class) and the worst class. ``--prior-samples N`` also
classifies N decodes of z ~ N(0, I): no labels exist there, so it reports the predicted-class
histogram and mean confidence only.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tools import prior_sample_means, reconstruct_means
from tools.digit_classifier import (
    DEFAULT_CLASSIFIER_PATH,
    DEFAULT_TRAIN,
    NUM_CLASSES,
    get_classifier,
    per_class_accuracy,
    predict,
    predict_proba,
)
from training.checkpoint import CheckpointError, load_vae

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
