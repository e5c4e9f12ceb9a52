"""An upload: from image bytes to the analysis the page shows, directly and through the whole app."""

from __future__ import annotations

import logging

import numpy as np

from bench.reruns import apptest, run_clean
from bench.timing import in_script_thread, median_seconds
from common.paths import REPO_ROOT
from explorer import bundle, codes
from explorer.analysis import NEIGHBOURS, analyse_digit
from explorer.preprocess import prepare_digit

ASSETS = REPO_ROOT / "tests" / "assets"
UPLOADS = (("photo", "digit_photo.jpg", "image/jpeg"), ("clean", "digit_clean.png", "image/png"))


def upload_direct(m: bundle.ExplorerModel, data: bytes, repeats: int) -> float:
    """Median seconds from image bytes to the upload's analysis (prepare + encode + decode + ELBO + kNN),
    the work the app's cached analyse_upload does."""
    def work(_: int) -> None:
        analyse_digit(m.model, m.atlas, prepare_digit(data), NEIGHBOURS)

    def timed() -> float:
        work(-1)  # warm-up
        return median_seconds(work, repeats)

    return in_script_thread(timed)


def upload_apptest(name: str, data: bytes, mime: str, repeats: int) -> float:
    """Whole app in AppTest, warmed up: median seconds of the run after a file upload, with the
    st.cache_data cache cleared before each run so the analysis really runs."""
    import streamlit as st

    at = apptest()
    run_clean(at)
    at.file_uploader(key="upload").set_value((name, data, mime))
    quiet = logging.getLogger("streamlit.runtime.caching.cache_data_api")  # "No runtime found" on clear()

    def run(i: int) -> None:
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            st.cache_data.clear()
        finally:
            quiet.setLevel(level)
        run_clean(at)
        if at.error:
            raise RuntimeError(f"upload of {name} failed: {[e.value for e in at.error]}")
        if not any("reconstruction from mu" in img.captions for img in at.image):
            raise RuntimeError(f"upload of {name} shows no reconstruction")

    run(-1)  # warm-up: first upload rendering (posterior figure, grids)
    return median_seconds(run, repeats)


def elbo_split_main_vs_thread(m: bundle.ExplorerModel, repeats: int) -> tuple[float, float]:
    """Median seconds of codes.elbo_split (64 decodes) in the calling thread and in a fresh thread."""
    image = np.zeros((28, 28), np.float32)
    image[8:20, 12:16] = 1.0

    def timed() -> float:
        codes.elbo_split(m.model, image)
        return median_seconds(lambda i: codes.elbo_split(m.model, image), repeats)

    return timed(), in_script_thread(timed)
