"""Pieces shared by the pages: guards with a way forward, the sidebar, Plotly figures."""

__all__: list[str] = []
