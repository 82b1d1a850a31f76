"""Streamlit entry point (kept thin; the page lives in app/ui.py).

Run it with ``make run`` (``instructor-search serve``) or ``streamlit run streamlit_app.py``;
settings come from ``INSTRUCTOR_SEARCH_*`` environment variables and the optional config file.
"""

from __future__ import annotations

import streamlit as st

from app import ui
from config import ConfigError, load_settings

st.set_page_config(page_title="instructor-search", page_icon=":material/manage_search:", layout="wide")
try:
    settings = load_settings()
except ConfigError as exc:
    ui.show_error(exc)
    st.stop()
if not ui.password_gate(settings):  # app.password set and not given yet in this browser session
    st.stop()
service = ui.open_service(settings)  # model and Qdrant client from st.cache_resource factories
if service is not None:
    ui.render(service)
