"""CellSeg Dashboard entry point: page setup and navigation, nothing else.

Run with ``make run`` (or ``streamlit run app.py``).
"""

import logging

import streamlit as st

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
st.set_page_config(page_title="CellSeg Dashboard", page_icon=":material/biotech:", layout="wide")

pages = [
    st.Page("pages/datasets.py", title="Datasets", icon=":material/photo_library:", default=True),
]
st.navigation(pages).run()
