"""Placeholder while this page is written."""

import streamlit as st

st.title("fairness")
st.info("Coming soon.")
