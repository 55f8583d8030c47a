"""The InterestLens Streamlit app (`interestlens serve`); pages only lay out, cache and call `core`."""

__all__: list[str] = []
