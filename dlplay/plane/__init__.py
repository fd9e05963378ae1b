"""The 2-D playground: points on a plane, a small dense network, its decision boundary as it learns.

``datasets`` (the point sets), ``features`` (x₁, x₂, x₁², … switchable inputs), ``session``
(:class:`PlaneSession`, a run on the shared run loop, and :class:`PlaneConfig`, the page's settings).
"""
