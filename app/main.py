"""INSIDE Explorer dashboard (placeholder until the dashboard lands)."""

import streamlit as st

st.set_page_config(page_title="INSIDE Explorer", layout="wide")
st.title("INSIDE Explorer")
st.info(
    "The interactive dashboard is coming: load a CLEVR-Seg or ACDC sample, move the conditioning "
    "sliders and watch INSIDE's Gaussian attention and the predicted masks follow."
)
