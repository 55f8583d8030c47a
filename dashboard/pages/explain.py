"""Placeholder while this page is written."""

import streamlit as st

st.title("explain")
st.info("Coming soon.")
