"""The Annotate page's mask editor, widget by widget; the editing itself is :mod:`core.masks`.

- :mod:`dashboard.editor.session`: the mask being edited in this tab (working state, undo, view, saving);
- :mod:`dashboard.editor.canvas`: the drawing canvas, its zoom and the minimap;
- :mod:`dashboard.editor.panels`: tools, mask operations, saving (with conflicts) and version history;
- :mod:`dashboard.editor.nav`: moving through a dataset (next empty, next unreviewed, review marks);
- :mod:`dashboard.editor.queue`: correcting proposals in the queue's order, with the model's doubt as a heat map;
- :mod:`dashboard.editor.results`: the editor opened from the Results page ("Fix this mask");
- :mod:`dashboard.editor.video`: a frame of a video (neighbours' outlines, copying a cell forward).
"""
