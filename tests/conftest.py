"""Shared fixtures: tiny synthetic MNIST-like data and tiny models, all in tmp_path (no network).

Two guards run for the whole session: no test may change a file under the repo's data/, models/
or artifacts/ (what a user owns: real MNIST, the shipped models, their runs), and no test may open
a connection beyond this machine (registries included; loopback servers are fine).
"""

from __future__ import annotations

import hashlib
import ipaddress
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from training.idx import write_idx_images, write_idx_labels


REPO = Path(__file__).resolve().parent.parent
SLOW_TIERS = ("browser", "server", "slow")  # registered in pytest.ini; plain `pytest` leaves them out


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--all", action="store_true", help="run every tier: fast, browser, server and slow tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Plain `pytest` runs the fast tier: tests marked browser, server or slow are deselected unless
    --all is given or a -m expression chooses tiers itself."""
    if config.getoption("--all") or config.getoption("-m"):
        return
    fast, slow = [], []
    for item in items:
        (slow if any(item.get_closest_marker(m) for m in SLOW_TIERS) else fast).append(item)
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = fast
        config._slow_tiers_left_out = len(slow)  # read by pytest_terminal_summary


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # noqa: ANN001
    left = getattr(config, "_slow_tiers_left_out", 0)
    if left:
        terminalreporter.write_line(
            f"fast tier only: {left} browser/server/slow tests not run; `pytest --all` runs everything"
        )
USER_FOLDERS = ("data", "models", "artifacts")


def user_files_snapshot(repo: Path = REPO) -> dict[str, str]:
    """relative path -> sha256 of every file under the repo's user folders (missing folders: nothing)."""
    snapshot = {}
    for folder in USER_FOLDERS:
        for path in sorted((repo / folder).rglob("*")):
            if path.is_file():
                snapshot[str(path.relative_to(repo))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return snapshot


def changed_files(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Files added, removed or changed between two snapshots, sorted."""
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


@pytest.fixture(scope="session", autouse=True)
def users_files_are_never_touched():
    """Fails the session (an error in its teardown) if any test changed data/, models/ or artifacts/."""
    before = user_files_snapshot()
    yield
    changed = changed_files(before, user_files_snapshot())
    assert not changed, f"the test session changed files the user owns: {changed}"


def _is_loopback(address: object) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if not isinstance(host, str):
        return True  # AF_UNIX paths and the like never leave the machine
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name other than localhost would need a DNS lookup: refuse


@pytest.fixture(scope="session", autouse=True)
def no_network():
    """Refuse connections to anything but loopback in this process, and make pip offline in subprocesses."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guard(address: object) -> None:
        if not _is_loopback(address):
            raise ConnectionRefusedError(f"tests must not reach the network (tried {address!r})")

    def connect(self, address):  # noqa: ANN001 - socket's signature
        guard(address)
        return real_connect(self, address)

    def connect_ex(self, address):  # noqa: ANN001
        guard(address)
        return real_connect_ex(self, address)

    mp = pytest.MonkeyPatch()
    mp.setattr(socket.socket, "connect", connect)
    mp.setattr(socket.socket, "connect_ex", connect_ex)
    mp.setenv("PIP_NO_INDEX", "1")  # a stray `pip download` fails at once instead of reaching a registry
    yield
    mp.undo()


def synthetic_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n images uint8 [n, 28, 28] with a class-dependent bar pattern, labels uint8 [n]."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = np.zeros((n, 28, 28), np.uint8)
    for i, y in enumerate(labels):
        images[i, 4 + 2 * y : 7 + 2 * y, 4:24] = 255  # a horizontal bar whose height encodes the class
        images[i] = np.maximum(images[i], (rng.random((28, 28)) < 0.02) * 255)
    return images, labels


@pytest.fixture(autouse=True)
def torch_threads_restored():
    """Whatever a test (or the trainer's `threads` setting) does to torch's thread count is undone, so a
    heavy test never inherits one thread from the test before it."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def one_torch_thread():
    """One torch thread for tiny workloads (extra threads stall on a shared CPU); restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_tiny_mnist(folder: Path) -> tuple[Path, dict[str, str]]:
    """Writes 256 train / 64 test synthetic images in torchvision's raw layout under folder/data;
    returns (data root, the md5 map those files have: pass it as expected_md5)."""
    raw = folder / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    tr_x, tr_y = synthetic_digits(256, seed=1)
    te_x, te_y = synthetic_digits(64, seed=2)
    write_idx_images(raw / "train-images-idx3-ubyte", tr_x)
    write_idx_labels(raw / "train-labels-idx1-ubyte", tr_y)
    write_idx_images(raw / "t10k-images-idx3-ubyte", te_x)
    write_idx_labels(raw / "t10k-labels-idx1-ubyte", te_y)
    md5 = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in raw.iterdir()}
    return folder / "data", md5


@pytest.fixture
def tiny_mnist(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A data root holding 256 train / 64 test synthetic images in torchvision's raw layout,
    and the md5 map those files have (pass it as expected_md5)."""
    return write_tiny_mnist(tmp_path)


def tiny_tensor_set() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train_x [256, 784], train_y, test_x [64, 784], test_y) float in [0, 1]: the images of write_tiny_mnist."""
    tr_x, tr_y = synthetic_digits(256, seed=1)
    te_x, te_y = synthetic_digits(64, seed=2)
    f = lambda a: torch.from_numpy(a.reshape(len(a), -1)).float() / 255.0  # noqa: E731
    return f(tr_x), torch.from_numpy(tr_y).long(), f(te_x), torch.from_numpy(te_y).long()


@pytest.fixture
def tiny_tensors() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train_x [256, 784], train_y, test_x [64, 784], test_y) float in [0, 1]."""
    return tiny_tensor_set()


TINY_MODELS = Path(__file__).resolve().parent / "assets" / "tiny_models"


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory) -> Path:
    """A copy (in tmp) of tests/assets/tiny_models: `default.pt`, a briefly trained 8-d VAE, and its real
    atlas (t-SNE included) over 300 synthetic test digits. Rebuilt by tests/make_tiny_models.py."""
    folder = tmp_path_factory.mktemp("models")
    for f in TINY_MODELS.iterdir():
        shutil.copy2(f, folder / f.name)
    return folder


@pytest.fixture(scope="module")
def tiny_app_server(tiny_models_dir, tmp_path_factory):
    """The real `streamlit run streamlit_app.py` with the shipped config, on a free loopback port, over the
    tiny test models (bench.harness.AppServer); one per test module."""
    from bench.harness import AppServer

    app = AppServer(tiny_models_dir, tmp_path_factory.mktemp("streamlit") / "server.log")
    try:
        app.start(timeout=90)
    except (RuntimeError, TimeoutError) as e:
        pytest.fail(str(e))
    yield app
    app.stop()
