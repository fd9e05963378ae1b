"""A run out of the playground: its code (PyTorch, Keras, a notebook) and its model as a local service.

``script`` writes a standalone PyTorch script (torch and numpy only) that reproduces a run, ``keras``
the same network in the tutorial's Keras, ``notebook`` the script's sections as a Jupyter notebook;
``serve`` runs the model's ONNX file behind a small HTTP server (``server_app.py``, standalone) and
load-tests it; ``bundle`` zips that server with a Dockerfile. No streamlit here (dlplay/ui/export.py
and dlplay/ui/deploy.py are the pages' side).
"""
