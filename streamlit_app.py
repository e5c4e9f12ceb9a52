"""VAE latent-space explorer: `streamlit run streamlit_app.py`. The app lives in the `app` package."""

from app.main import run

run()
