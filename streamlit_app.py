"""Streamlit entry point (kept thin; the page lives in app/)."""
