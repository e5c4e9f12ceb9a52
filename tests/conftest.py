"""Shared fixtures: tiny synthetic MNIST-like data and tiny models, all in tmp_path (no network)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from training.data import write_idx_images, write_idx_labels


def synthetic_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n images uint8 [n, 28, 28] with a class-dependent bar pattern, labels uint8 [n]."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = np.zeros((n, 28, 28), np.uint8)
    for i, y in enumerate(labels):
        images[i, 4 + 2 * y : 7 + 2 * y, 4:24] = 255  # a horizontal bar whose height encodes the class
        images[i] = np.maximum(images[i], (rng.random((28, 28)) < 0.02) * 255)
    return images, labels


@pytest.fixture
def one_torch_thread():
    """One torch thread for tiny workloads (extra threads stall on a shared CPU); restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_mnist(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A data root holding 256 train / 64 test synthetic images in torchvision's raw layout,
    and the md5 map those files have (pass it as expected_md5)."""
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    tr_x, tr_y = synthetic_digits(256, seed=1)
    te_x, te_y = synthetic_digits(64, seed=2)
    write_idx_images(raw / "train-images-idx3-ubyte", tr_x)
    write_idx_labels(raw / "train-labels-idx1-ubyte", tr_y)
    write_idx_images(raw / "t10k-images-idx3-ubyte", te_x)
    write_idx_labels(raw / "t10k-labels-idx1-ubyte", te_y)
    md5 = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in raw.iterdir()}
    return tmp_path / "data", md5


@pytest.fixture
def tiny_tensors() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train_x [256, 784], train_y, test_x [64, 784], test_y) float in [0, 1]."""
    tr_x, tr_y = synthetic_digits(256, seed=1)
    te_x, te_y = synthetic_digits(64, seed=2)
    f = lambda a: torch.from_numpy(a.reshape(len(a), -1)).float() / 255.0  # noqa: E731
    return f(tr_x), torch.from_numpy(tr_y).long(), f(te_x), torch.from_numpy(te_y).long()


TINY_MODELS = Path(__file__).resolve().parent / "assets" / "tiny_models"


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory) -> Path:
    """A copy (in tmp) of tests/assets/tiny_models: `default.pt`, a briefly trained 8-d VAE, and its real
    atlas (t-SNE included) over 300 synthetic test digits. Rebuilt by tests/make_tiny_models.py."""
    folder = tmp_path_factory.mktemp("models")
    for f in TINY_MODELS.iterdir():
        shutil.copy2(f, folder / f.name)
    return folder
