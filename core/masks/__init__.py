"""Masks: reading them, editing them, picturing them and keeping every saved version.

:mod:`core.masks.kinds` recognises what a mask file holds (binary 0/255 or 0/1, JPEG-noisy binary, instance
ids, colour-coded instances) and turns it into a binary ``uint8`` 0/255 mask, keeping instance ids as
``uint16`` labels where there are any.

:mod:`core.masks.pixels` works on the mask arrays themselves: edits (paint, erase, fill holes, remove small
objects, delete an object, keeping instance ids consistent) and pictures for people (overlays in a colour
that stands out, outlines, coloured instances, differences between two masks).

:mod:`core.masks.drawing` maps what is drawn on the editor's canvas (Fabric.js objects or an RGBA raster,
in canvas pixels of a zoomed view window) back to the image's own pixels.

:mod:`core.masks.editor` holds the editor's operations as pure functions ``(MaskState, …) -> Edit``,
built on the two above.

:mod:`core.masks.undo` keeps undo and redo small: each step stores only a compressed difference.

:mod:`core.masks.versions` saves masks: every save keeps the previous versions and a log line, under a
per-dataset lock, and a save that started from an outdated version is refused unless forced.
"""
