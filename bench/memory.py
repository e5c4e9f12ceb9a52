"""Memory of one upload, and of ten at once: `python -m bench.memory [--keep DIR] [--kinds a,b]`.

Makes hostile and ordinary image files in a temporary folder (synthetic: a drawn digit, so every
file is also a fair test of the pipeline) and runs `explorer.preprocess.prepare_digit` on each in a
fresh subprocess, which reports its resident memory (RSS) before the call (idle, after a warm-up
upload so the imports are paid) and its peak during the call. The peak is read from the kernel's
high-water mark (VmHWM), reset just before the call (/proc/self/clear_refs), so it is this call's
peak and nothing earlier.

Prints, one line per file kind:

    memory_<kind>_above_idle_mb=X (target <= 150) PASS|MISS      # and a `#` line: outcome, size, time

then ten hostile files at once (ten threads in one process, as a server's script threads would be):
`memory_ten_at_once_above_idle_mb` and `ten_at_once_seconds`, and `small_upload_during_ten_s`: how
long an ordinary photo (a learner in the same class) waited for its answer while the ten ran.
The whole server's figure is the idle server (~260-380 MB measured with a model loaded) plus these.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from bench.timing import Figure

TARGET_ONE_MB = 150.0  # issue 20: any one upload at most ~150 MB above the idle server
TARGET_TEN_MB = 1100.0  # ten at once: under 1.5 GB for the whole server, whose idle is ~0.4 GB
TARGET_SMALL_S = 5.0  # an ordinary upload still answered while ten hostile ones run
# Ten hostile files that are all accepted (the costliest of each kind), so all ten really decode.
HOSTILE_FOR_TEN = ("png16", "rgba_max", "palette", "png8", "jpeg_progressive_max", "webp_max", "png16", "rgba_max",
                   "bmp", "gif")


# --- the files ----------------------------------------------------------------------------------

def _digit(w: int, h: int) -> Image.Image:
    """A dark "7" on white paper, w x h, mode "L", strokes scaled to the picture."""
    im = Image.new("L", (w, h), 255)
    d = ImageDraw.Draw(im)
    s = min(w, h)
    d.line([(w / 2 - s * 0.25, h / 2 - s * 0.3), (w / 2 + s * 0.2, h / 2 - s * 0.3), (w / 2 - s * 0.05, h / 2 + s * 0.35)],
           fill=20, width=max(3, s // 25), joint="curve")
    return im


def _save(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _phone_photo(w: int = 4000, h: int = 3000) -> bytes:
    """A 12 MP phone photo: grey paper with a lighting gradient and sensor noise, the digit, stored
    sideways with EXIF Orientation 6 (as phones do), JPEG quality 92."""
    rng = np.random.default_rng(0)
    paper = np.linspace(150, 210, w, dtype=np.float32)[None, :] + np.linspace(-15, 15, h, dtype=np.float32)[:, None]
    ink = np.asarray(_digit(w, h).filter(ImageFilter.GaussianBlur(3)), np.float32) / 255.0
    grey = paper * (0.35 + 0.65 * ink) + rng.normal(0, 4, (h, w)).astype(np.float32)
    rgb = np.clip(np.stack([grey * 1.02, grey, grey * 0.95], axis=-1), 0, 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    return _save(Image.fromarray(rgb).transpose(Image.Transpose.ROTATE_90), "JPEG", quality=92, exif=exif)


def _bmp_palette(w: int, h: int) -> bytes:
    return _save(_digit(w, h).convert("P"), "BMP")


def _webp(w: int, h: int) -> bytes:
    return _save(_digit(w, h).convert("RGBA"), "WEBP", lossless=True)


KINDS: dict[str, tuple[str, Callable[[], bytes]]] = {
    # name: (what it is, maker). 6320 x 6320 is just under the 40 MP cap; 7300 x 5470 too.
    "png8": ("6320x6320 8-bit greyscale PNG", lambda: _save(_digit(6320, 6320), "PNG")),
    "png16": ("6320x6320 16-bit greyscale PNG", lambda: _save(
        Image.fromarray(np.asarray(_digit(6320, 6320), np.uint16) * 257), "PNG")),
    "rgba": ("7300x5470 RGBA PNG, transparent background", lambda: _save(
        Image.merge("RGBA", [Image.new("L", (7300, 5470), 0)] * 3 + [_digit(7300, 5470).point(lambda v: 255 - v)]), "PNG")),
    "palette": ("6320x6320 palette PNG with a transparent index", lambda: _save(
        _digit(6320, 6320).convert("P"), "PNG", transparency=255)),
    "jpeg": ("7300x5470 baseline JPEG", lambda: _save(_digit(7300, 5470).convert("RGB"), "JPEG", quality=90)),
    "jpeg_progressive": ("7300x5470 progressive JPEG", lambda: _save(
        _digit(7300, 5470).convert("RGB"), "JPEG", quality=90, progressive=True)),
    # the largest of the kinds refused at 40 MP that are still accepted (explorer.preprocess.MAX_DECODE_BYTES)
    "rgba_max": ("5160x3870 RGBA PNG (20 MP), transparent background", lambda: _save(
        Image.merge("RGBA", [Image.new("L", (5160, 3870), 0)] * 3 + [_digit(5160, 3870).point(lambda v: 255 - v)]), "PNG")),
    "jpeg_progressive_max": ("6000x4500 progressive JPEG (27 MP)", lambda: _save(
        _digit(6000, 4500).convert("RGB"), "JPEG", quality=90, progressive=True)),
    "webp_max": ("2200x2200 lossless WebP (4.8 MP)", lambda: _webp(2200, 2200)),
    "phone": ("12 MP phone photo, JPEG, EXIF-rotated, noisy", _phone_photo),
    "webp": ("6320x6320 lossless RGBA WebP", lambda: _webp(6320, 6320)),
    "gif": ("6320x6320 GIF", lambda: _save(_digit(6320, 6320), "GIF")),
    "bmp": ("4400x4400 8-bit palette BMP (19 MB)", lambda: _bmp_palette(4400, 4400)),
    "small": ("280x280 PNG, a drawing pad's stroke", lambda: _save(_digit(280, 280), "PNG")),
}


def make_files(folder: Path, kinds: Sequence[str]) -> dict[str, Path]:
    """Write each kind's file into `folder` (once: an existing file is reused); kind -> path."""
    out = {}
    for kind in kinds:
        path = folder / f"{kind}.img"
        if not path.exists():
            tmp = path.with_suffix(".part")
            tmp.write_bytes(KINDS[kind][1]())
            os.replace(tmp, path)
        out[kind] = path
    return out


# --- the measuring subprocess -------------------------------------------------------------------

def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux >= 4.0); False if not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _worker(paths: Sequence[str], small: str | None) -> dict:
    """In the subprocess: idle RSS, then all files at once (one thread each), then the peak."""
    from explorer.preprocess import UnusableImageError, prepare_digit

    datas = [Path(p).read_bytes() for p in paths]
    warm = _save(_digit(300, 300), "PNG")
    prepare_digit(warm)  # pays the imports (scipy.ndimage) and first-call costs
    small_data = Path(small).read_bytes() if small else None
    idle = _status_kb("VmRSS")
    if not _reset_peak():
        raise RuntimeError("cannot reset the peak RSS (/proc/self/clear_refs)")
    outcomes: list[str] = [""] * len(datas)
    small_s: list[float] = []

    def run(i: int) -> None:
        try:
            prepare_digit(datas[i])
            outcomes[i] = "ok"
        except UnusableImageError as e:
            outcomes[i] = f"refused: {e}"

    t0 = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(datas))]
    for t in threads:
        t.start()
    if small_data is not None:
        time.sleep(0.2)  # a learner's ordinary upload arrives while the hostile ones are being decoded
        s0 = time.perf_counter()
        prepare_digit(small_data)
        small_s.append(time.perf_counter() - s0)
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    peak = _status_kb("VmHWM")
    return {"idle_mb": idle / 1024, "peak_mb": peak / 1024, "above_idle_mb": (peak - idle) / 1024,
            "seconds": seconds, "outcomes": outcomes, "small_s": small_s[0] if small_s else None}


def measure(paths: Sequence[Path], small: Path | None = None) -> dict:
    """Run the files at once in a fresh subprocess; its report (see _worker)."""
    cmd = [sys.executable, "-m", "bench.memory", "--worker", *map(str, paths)]
    if small is not None:
        cmd += ["--small", str(small)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False,
                          cwd=Path(__file__).resolve().parent.parent)
    if done.returncode != 0:
        raise RuntimeError(f"measuring {paths} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _outcome(text: str) -> str:
    return text if len(text) < 140 else text[:137] + "..."


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, of: {', '.join(KINDS)}")
    ap.add_argument("--keep", type=Path, default=None, help="make (or reuse) the files in this folder")
    ap.add_argument("--no-ten", action="store_true", help="skip the ten-at-once run")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--small", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.worker, args.small)))
        return 0
    kinds = [k for k in args.kinds.split(",") if k]
    if unknown := [k for k in kinds if k not in KINDS]:
        ap.error(f"unknown kinds {unknown}")
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        want = set(kinds) | ({"phone", *HOSTILE_FOR_TEN} if not args.no_ten else set())
        files = make_files(folder, [k for k in KINDS if k in want])
        print(f"# files in {folder}; cpus={os.cpu_count()}", flush=True)
        for kind in kinds:
            r = measure([files[kind]])
            print(Figure(f"memory_{kind}_above_idle_mb", r["above_idle_mb"], TARGET_ONE_MB).line(), flush=True)
            print(f"#   {KINDS[kind][0]}, {files[kind].stat().st_size / 1e3:,.0f} KB: {_outcome(r['outcomes'][0])}; "
                  f"idle {r['idle_mb']:.0f} MB, peak {r['peak_mb']:.0f} MB, {r['seconds']:.2f} s", flush=True)
        if not args.no_ten:
            r = measure([files[k] for k in HOSTILE_FOR_TEN], small=files["phone"])
            print(Figure("memory_ten_at_once_above_idle_mb", r["above_idle_mb"], TARGET_TEN_MB).line(), flush=True)
            print(Figure("small_upload_during_ten_s", r["small_s"], TARGET_SMALL_S).line(), flush=True)
            refused = sum(o.startswith("refused") for o in r["outcomes"])
            print(f"#   {', '.join(HOSTILE_FOR_TEN)}: {len(r['outcomes']) - refused} analysed, {refused} refused, "
                  f"all in {r['seconds']:.2f} s; idle {r['idle_mb']:.0f} MB, peak {r['peak_mb']:.0f} MB; "
                  "the ordinary upload was a 12 MP phone photo", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
