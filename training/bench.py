"""Time one training epoch: the pytorch/examples VAE loop vs our in-memory trainer.

    python -m training.bench [--repeats N] [--device auto|cpu|cuda] [--threads N]

(a) reference: DataLoader(MNIST(transform=ToTensor()), batch_size=128, shuffle=True), the
    784-400-20 VAE with a sigmoid output, BCE(sum) + KL, Adam(lr=1e-3), loss.item() every batch;
(b) ours: training.train.train_epoch on the same grey-level images as one in-memory tensor, same
    layer sizes and batch size. Each loop gets a few untimed warm-up batches; epochs alternate
    (reference, ours, reference, ...) so background load hits both alike. The last line is
    `speedup=X.XX` (best reference seconds / best ours).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Mapping
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from training.config import TrainConfig
from training.mnist_sources import MNIST_FILES
from training.model import VAE
from training.train import make_optimizer, train_epoch


# ----------------------------------------------------------------- (a) the reference, compactly


class ReferenceVAE(nn.Module):
    """pytorch/examples vae/main.py: 784-400-(20, 20), 20-400-784, ReLU, sigmoid output."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h1 = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h1), self.fc22(h1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


def reference_loss(recon: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    bce = F.binary_cross_entropy(recon, x.view(-1, 784), reduction="sum")
    return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def reference_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, loader: DataLoader,
                    device: torch.device, max_batches: int | None = None) -> float:
    """The example's train(epoch) loop; returns the mean loss per image (nats)."""
    model.train()
    train_loss, seen = 0.0, 0
    for batch_idx, (data, _) in enumerate(loader):
        if max_batches is not None and batch_idx >= max_batches:
            break
        data = data.to(device)
        optimizer.zero_grad()
        recon, mu, logvar = model(data)
        loss = reference_loss(recon, data, mu, logvar)
        loss.backward()
        train_loss += loss.item()
        optimizer.step()
        seen += len(data)
    return train_loss / seen


# ---------------------------------------------------------------------------- the benchmark


def bench_config(device: str = "auto", batch_size: int = 128) -> TrainConfig:
    """Our trainer with the reference's layer sizes, batch size and grey-level (not binarised) data."""
    return TrainConfig(encoder_hidden=(400,), decoder_hidden=(400,), latent_dim=20, batch_size=batch_size,
                       binarize=False, warmup_epochs=0, progress=False, device=device)


@dataclass
class BenchResult:
    n_images: int
    reference_seconds: list[float] = field(default_factory=list)
    our_seconds: list[float] = field(default_factory=list)
    reference_cpu_seconds: list[float] = field(default_factory=list)  # process CPU time (all threads)
    our_cpu_seconds: list[float] = field(default_factory=list)
    reference_losses: list[float] = field(default_factory=list)  # mean loss of each timed epoch
    our_losses: list[float] = field(default_factory=list)
    reference_params_changed: bool = False
    our_params_changed: bool = False
    gpu_images_per_s: float | None = None

    @property
    def speedup(self) -> float:
        return min(self.reference_seconds) / min(self.our_seconds)


def _snapshot(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def _changed(model: nn.Module, before: list[torch.Tensor]) -> bool:
    return all(not torch.equal(p.detach(), b) for p, b in zip(model.parameters(), before))


def _timed(fn: Callable[[], Any], device: torch.device) -> tuple[float, float, Any]:
    """(wall seconds, process CPU seconds, fn()); CUDA work is synchronised on both sides."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0, time.process_time() - c0, out


def gpu_throughput(train_x: torch.Tensor, batch_size: int = 128, warmup_batches: int = 3) -> float:
    """Images/s of one epoch of our trainer on CUDA (data resident on the GPU), synchronised."""
    device = torch.device("cuda")
    cfg = bench_config("cuda", batch_size)
    x = train_x.to(device, torch.float32).contiguous()
    torch.manual_seed(cfg.seed)
    model = VAE(cfg.model_config()).to(device)
    optimizer = make_optimizer(model, cfg.lr)
    train_epoch(model, optimizer, x[: warmup_batches * batch_size], cfg, 1)
    seconds, _, _ = _timed(lambda: train_epoch(model, optimizer, x, cfg, 1), device)
    return len(x) / seconds


def _summary(seconds: list[float], cpu_seconds: list[float], n: int) -> str:
    best, med = min(seconds), statistics.median(seconds)
    runs = f"; median {med:.2f} s of {len(seconds)}" if len(seconds) > 1 else ""
    # CPU time says how much of the wall time was our work on a machine shared with other jobs.
    return f"{best:.2f} s/epoch, {n / best:,.0f} images/s (best{runs}; process CPU {min(cpu_seconds):.2f} s)"


def run_bench(
    train_x: torch.Tensor,
    reference_dataset: Dataset,
    repeats: int = 1,
    device: str = "auto",
    batch_size: int = 128,
    warmup_batches: int = 3,
    gpu: bool = True,
    log: Callable[[str], None] = print,
) -> BenchResult:
    """Time `repeats` epochs of each loop (alternating) and print the report; returns the numbers.

    train_x [N, 784] float in [0, 1] and reference_dataset (items (image [1, 28, 28], label))
    must hold the same images. `gpu` adds the CUDA throughput line where a CUDA device exists.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    cfg = bench_config(device, batch_size)
    dev = cfg.torch_device()
    n = len(train_x)
    if len(reference_dataset) != n:
        raise ValueError(f"reference dataset has {len(reference_dataset)} images, train_x {n}")
    log(f"one epoch of {n:,} images, batch {batch_size}, device {dev}, torch threads {torch.get_num_threads()}, "
        f"{repeats} timed epoch(s) each, {warmup_batches} untimed warm-up batches each")

    # (a) the reference: the example's loader settings (worker + pinned memory only with CUDA).
    loader_kw: dict[str, Any] = {"num_workers": 1, "pin_memory": True} if dev.type == "cuda" else {}
    loader = DataLoader(reference_dataset, batch_size=batch_size, shuffle=True, **loader_kw)
    torch.manual_seed(cfg.seed)
    ref_model = ReferenceVAE().to(dev)
    ref_opt = torch.optim.Adam(ref_model.parameters(), lr=1e-3)
    reference_epoch(ref_model, ref_opt, loader, dev, max_batches=warmup_batches)

    # (b) ours: data in memory on the device, warm-up on the first few batches' worth of images.
    x = train_x.to(dev, torch.float32).contiguous()
    torch.manual_seed(cfg.seed)
    model = VAE(cfg.model_config()).to(dev)
    optimizer = make_optimizer(model, cfg.lr)
    train_epoch(model, optimizer, x[: warmup_batches * batch_size], cfg, 1)

    result = BenchResult(n_images=n)
    ref_before, our_before = _snapshot(ref_model), _snapshot(model)
    for epoch in range(1, repeats + 1):
        s, c, loss = _timed(lambda: reference_epoch(ref_model, ref_opt, loader, dev), dev)
        result.reference_seconds.append(s)
        result.reference_cpu_seconds.append(c)
        result.reference_losses.append(loss)
        s, c, stats = _timed(lambda: train_epoch(model, optimizer, x, cfg, epoch), dev)
        result.our_seconds.append(s)
        result.our_cpu_seconds.append(c)
        result.our_losses.append(stats["train_loss"])
    result.reference_params_changed = _changed(ref_model, ref_before)
    result.our_params_changed = _changed(model, our_before)

    log(f"reference (DataLoader + ToTensor, pytorch/examples VAE): {_summary(result.reference_seconds, result.reference_cpu_seconds, n)}; "
        f"loss {result.reference_losses[-1]:.2f}")
    log(f"ours (training.train.train_epoch, in-memory tensors):    {_summary(result.our_seconds, result.our_cpu_seconds, n)}; "
        f"loss {result.our_losses[-1]:.2f}")
    if gpu and torch.cuda.is_available():
        result.gpu_images_per_s = gpu_throughput(train_x, batch_size, warmup_batches)
        log(f"GPU throughput (ours, {torch.cuda.get_device_name()}): {result.gpu_images_per_s:,.0f} images/s "
            f"({n / result.gpu_images_per_s:.2f} s/epoch)")
    else:
        log("GPU throughput: skipped, no CUDA device present")
    log(f"speedup={result.speedup:.2f}")
    return result


def load_inputs(root: str | Path, expected_md5: Mapping[str, str] = MNIST_FILES,
                sources: Sequence[Callable[[Path], None]] | None = None) -> tuple[torch.Tensor, Dataset]:
    """The MNIST training images twice: our in-memory tensor and torchvision's ToTensor dataset."""
    from torchvision import datasets, transforms

    from training.data import load_mnist

    train_x, _ = load_mnist(root, True, expected_md5, sources)  # md5-checks the raw files
    dataset = datasets.MNIST(root=str(root), train=True, download=False, transform=transforms.ToTensor())
    if not torch.equal(dataset[0][0].reshape(-1), train_x[0]):
        raise RuntimeError("torchvision's MNIST and training.data.load_mnist disagree on image 0")
    return train_x, dataset


def main(argv: Sequence[str] | None = None, *, expected_md5: Mapping[str, str] = MNIST_FILES,
         sources: Sequence[Callable[[Path], None]] | None = None) -> int:
    """Run the benchmark; `expected_md5`/`sources` go to training.data.load_mnist."""
    parser = argparse.ArgumentParser(prog="python -m training.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="timed epochs per loop; the best counts (default 1)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="device of the head-to-head comparison (default auto: cuda if present)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch.set_num_threads for both loops; 0 leaves torch's default (default 0)")
    parser.add_argument("--warmup-batches", type=int, default=3, help="untimed warm-up batches per loop (default 3)")
    parser.add_argument("--data-root", type=Path, default=TrainConfig().data_path(), help="MNIST root (default: data)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    train_x, dataset = load_inputs(args.data_root, expected_md5, sources)
    run_bench(train_x, dataset, repeats=args.repeats, device=args.device, warmup_batches=args.warmup_batches)
    return 0


if __name__ == "__main__":
    sys.exit(main())
