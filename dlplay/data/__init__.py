"""Data: the dataset registry, a run's split, augmentation, drawings and uploads to 28x28 digits."""
