"""The network: registries (activations, layers, cells, optimizers), spec, model, presets, the dense engine."""
