"""The explorer for a hosted service or a container: `streamlit run hosted/streamlit_app.py`.

The same app as the repo's streamlit_app.py; it lives in this folder so that a hosted Streamlit service
installs hosted/requirements.txt (the app's packages, no torch) instead of the root requirements.txt
(training, torch and the test tools). Run it from the repo root, which holds .streamlit/config.toml and
models/. See docs/hosting.md.
"""

import sys
from pathlib import Path

# `streamlit run` puts this script's folder on sys.path, not the repo root where the app package lives.
ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from app.main import run  # noqa: E402 - needs the path above

run()
