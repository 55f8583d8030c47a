"""Placeholder while this page is written."""

import streamlit as st

st.title("data_models")
st.info("Coming soon.")
