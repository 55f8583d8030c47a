"""InterestLens core: everything that computes. Never imports Streamlit."""

__version__ = "0.1.0"
