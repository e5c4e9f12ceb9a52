"""The app runs with torch, training and scikit-learn unimportable, as in the lean app-only install."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.server
def test_app_runs_with_torch_blocked():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("VAE_EXPLORER_MODELS", None)  # the shipped models, as a fresh install would open
    out = subprocess.run([sys.executable, str(REPO / "tests" / "app_only_check.py"), "--block-torch"],
                         capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "app-only check passed" in out.stdout
