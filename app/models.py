"""Cached loading shared by the pages: models, the 10k-point map figures, upload analyses.

Every cache is keyed on small explicit values (paths, mtimes, digests), never on arrays.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from common.paths import atlas_path_for
from explorer import bundle, figures, projection
from explorer.analysis import DigitAnalysis, analyse_digit
from explorer.preprocess import prepare_digit

_log = logging.getLogger(__name__)


def file_version(path: Path) -> tuple[int, int]:
    """(checkpoint mtime, atlas mtime) in ns, 0 where missing: a cache key that changes when either file does."""
    def mtime(p: Path) -> int:
        try:
            return p.stat().st_mtime_ns
        except OSError:
            return 0
    return mtime(path), mtime(atlas_path_for(path))


@st.cache_resource(show_spinner="Loading the model and its latent atlas…", max_entries=12)
def load_model_or_error(path: str, version: tuple[int, int]) -> bundle.ExplorerModel | bundle.ModelLoadFailure:
    """The model at `path`, or a ModelLoadFailure saying (to a visitor) why it cannot be used.

    Cached per file version (both mtimes) and shared by all sessions; treat the model as read-only.
    A failure is cached too, so a broken file is not re-read and re-hashed on every rerun; its detail
    (file, error, the command that fixes it) is logged once, on the server only.
    """
    try:
        return bundle.load_explorer_model(path)
    except bundle.ModelUnavailableError as e:
        _log.warning("model %s cannot be used: %s", path, e)
        return bundle.ModelLoadFailure(bundle.checkpoint_name(path), e.problem)
    except Exception:  # noqa: BLE001 - a model file must never put a traceback (with paths) in the page
        _log.exception("model %s cannot be loaded", path)
        return bundle.ModelLoadFailure(bundle.checkpoint_name(path), "it could not be loaded (the server's log says why)")


@st.cache_resource(max_entries=16)
def map_figure(_m: bundle.ExplorerModel, sha: str, proj: str, markers: tuple, pan: bool = False) -> go.Figure:
    """The 10k-point map, built once per (model, projection, markers, pan): building it costs ~0.2 s.
    markers: (name, xy, symbol[, off_data]) tuples (figures.latent_map_figure)."""
    coords = projection.map_coords(_m.atlas, proj)
    marks = [(mk[0], np.array(mk[1]), *mk[2:]) for mk in markers]
    return figures.latent_map_figure(coords, _m.atlas.labels, proj, marks, pan=pan)


@st.cache_data(max_entries=8, show_spinner=False)
def analyse_upload(_m: bundle.ExplorerModel, sha: str, data: bytes) -> DigitAnalysis:
    """Normalise an uploaded image and analyse it; raises UnusableImageError for unusable files."""
    return analyse_digit(_m.model, _m.atlas, prepare_digit(data))
