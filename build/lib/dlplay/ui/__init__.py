"""Streamlit helpers shared by pages (the only package code besides pages that imports streamlit)."""
