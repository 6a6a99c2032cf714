"""The INSIDE Explorer dashboard (`streamlit run app/main.py`): the page and its helpers."""
