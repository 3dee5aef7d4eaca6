"""The DuckDB catalogue: an index of the dataset, preset and run folders, rebuilt from them whenever they change.

The folders are the truth; the catalogue makes them quick to list, filter, sort and join. Every module here
takes an open connection, and every value reaches SQL as a parameter.

:mod:`core.catalogue.store` is the catalogue file itself: its schema and forward migrations, opening it
with DuckDB's lock in mind (only one process may hold it), and the one ``transaction()`` every write goes
through.

:mod:`core.catalogue.datasets` indexes the datasets, their images and their saved mask edits from the
dataset folders, and answers the questions the pages ask about them (pages of images, statistics,
videos, an image's mask history).

:mod:`core.catalogue.presets` indexes the augmentation presets saved as JSON files.

:mod:`core.catalogue.runs` ingests training runs (settings, metrics per epoch, a summary) from their
folders, idempotently, together with their evaluations through :mod:`core.catalogue.evals`, which reads
the per-image scores and summaries an evaluation wrote. Questions about runs are answered by
:mod:`core.runs.queries`.
"""
