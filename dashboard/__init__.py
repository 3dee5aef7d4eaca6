"""Streamlit glue between the pages and the engine in core/."""
