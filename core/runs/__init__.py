"""Training runs once they exist: their folders, what people say about them, using them, comparing them.

:mod:`core.runs.folder` is the run folder describing itself (:class:`~core.runs.folder.RunDir`: settings,
status, metrics per epoch, log, checkpoints, previews), creating one and listing them. It is where the
dashboard and the training worker meet; plain Python, no TensorFlow.

:mod:`core.runs.notes` keeps what people say about a run (a display name, notes, tags, a "deleted" mark)
in the run folder itself, so that rebuilding the catalogue keeps them.

:mod:`core.runs.model` turns a trained run into a predictor: its checkpoint, its input settings and the
inference settings chosen on the Results page. Loading the model imports Keras, so only workers, the
command line and benchmarks do it.

:mod:`core.runs.queries` answers questions about runs from the DuckDB catalogue (filtered and sorted run
lists, settings, metric curves, per-image pairs of two runs) as pandas DataFrames.

:mod:`core.runs.compare` holds the paired statistics of two runs scored on the same images (is B really
better than A?) and what changed between them: settings, data, mask edits.

:mod:`core.runs.report` writes a comparison of runs as one self-contained HTML file, and as CSV.

Creating a run from a training configuration (checks, dataset lineage) is :mod:`core.train.runs`.
"""
