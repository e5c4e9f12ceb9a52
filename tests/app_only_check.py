"""Proves the app runs from the lean install (hosted/requirements.txt): no torch, no training package.

    PYTHONPATH=. python tests/app_only_check.py [--block-torch] [--app hosted/streamlit_app.py]

Drives the real app through AppTest on the shipped models: start, a new code (the prior button), an upload. Exits 1
with the reason if anything fails or if torch (or the torch-bound training package) got imported.
`.ci/run` runs it with the hosted entrypoint in a fresh venv holding only hosted/requirements.txt (which
requirements-app.txt includes); tests/test_app_only.py runs it in the full environment with torch blocked. Not collected by pytest (no test_ prefix).
"""

from __future__ import annotations

import argparse
import importlib.abc
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FORBIDDEN = ("torch", "torchvision", "training", "sklearn")


class _Refuse(importlib.abc.MetaPathFinder):
    """Makes `import torch` (and the rest of FORBIDDEN) fail, as in an environment without them."""

    def find_spec(self, fullname, path, target=None):  # noqa: ANN001 - importlib's signature
        if fullname.split(".")[0] in FORBIDDEN:
            raise ModuleNotFoundError(f"{fullname} is blocked: the app must run without it")
        return None


def check(app: Path = REPO / "streamlit_app.py") -> list[str]:
    """Run the app from entrypoint `app` and return the problems found (empty: all good)."""
    import logging

    from streamlit.testing.v1 import AppTest

    # AppTest touches session state from the main thread: Streamlit logs a harmless warning for it.
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(
        lambda record: "missing ScriptRunContext" not in record.getMessage())

    problems: list[str] = []
    at = AppTest.from_file(str(app), default_timeout=120)
    at.run()
    if at.exception or at.error:
        return [f"start: {[e.value for e in at.exception]} {[e.value for e in at.error]}"]
    def summary() -> str:
        return next((c.value for c in at.caption if c.value.startswith("Code from")), "")

    if "**test digit #0**" not in summary():  # the app opens on a real digit's code
        problems.append(f"start: no summary of the starting code ({summary()!r})")
    at.button(key="btn_prior").click().run()
    if at.exception or "**a prior draw**" not in summary():
        problems.append("a prior draw: the code did not change")
    photo = REPO / "tests" / "assets" / "digit_photo.jpg"
    at.file_uploader(key="upload").set_value((photo.name, photo.read_bytes(), "image/jpeg")).run()
    captions = [c for img in at.image for c in img.captions]
    if at.exception or at.error or "reconstruction from mu" not in captions:
        problems.append(f"upload: no reconstruction shown ({[e.value for e in at.error]})")
    imported = [m for m in FORBIDDEN if m in sys.modules]
    if imported:
        problems.append(f"imported {imported}: the app must not need them")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--block-torch", action="store_true", help="refuse torch, training and sklearn imports")
    parser.add_argument("--app", type=Path, default=REPO / "streamlit_app.py",
                        help="the entrypoint to run (default streamlit_app.py; .ci/run checks hosted/streamlit_app.py)")
    args = parser.parse_args()
    if args.block_torch:
        sys.meta_path.insert(0, _Refuse())
    problems = check(args.app.resolve())
    for p in problems:
        print(f"app-only check FAILED: {p}", file=sys.stderr)
    if not problems:
        print("app-only check passed: start, a new code and an upload ran without torch")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
