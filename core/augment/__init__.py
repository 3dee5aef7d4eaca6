"""Augmentation: transforms, the pipeline that chains them, presets and the seed INI import."""
