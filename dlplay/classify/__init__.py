"""The classifier task: a training session on the kernel and what only it needs (probe, fork, pins...)."""
