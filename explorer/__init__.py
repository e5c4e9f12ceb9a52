"""Latent-space explorer: preprocessing, model loading and projections for the Streamlit app."""
