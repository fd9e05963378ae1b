"""dlplay: a browser playground for learning deep learning by doing (core package, no streamlit)."""

__version__ = "0.1.0"
