"""Segmentation models. ``core.models.config`` is plain Python; ``core.models.registry`` imports Keras
(TensorFlow) and is only imported by worker processes, never by the dashboard."""
