"""The Augment page's widgets; the transforms themselves are :mod:`core.augment`.

- :mod:`dashboard.augment.form`: one panel per transform, built from the settings' own ranges and help;
- :mod:`dashboard.augment.presets`: loading, saving and importing presets;
- :mod:`dashboard.augment.preview`: the live preview grid.
"""
