"""The run kernel: the loop thread and its commands, hooks, metrics, status, device, memory, CUDA graphs."""
