"""Training: from a run's settings to a trained model, in a worker process.

Plain Python, importable by the dashboard: :mod:`~core.train.config` (the settings), :mod:`~core.train.presets`
(Quick, Standard, Thorough, Refine), :mod:`~core.train.runs` (creating a run), :mod:`~core.train.estimates`
(advice before training) and :mod:`~core.train.seed_json` (a ``configuration.json`` read into settings).

In the worker, which imports TensorFlow: :mod:`~core.train.worker` trains and keeps the run folder up to date;
:mod:`~core.train.environment` sets TensorFlow up (threads, device, precision, seeds); :mod:`~core.train.data`,
:mod:`~core.train.targets`, :mod:`~core.train.feeding` and :mod:`~core.train.windows_data` make the batches;
:mod:`~core.train.validation` scores each epoch as an evaluation would; :mod:`~core.train.recorder` writes
metrics, previews and checkpoints; :mod:`~core.train.lr_find` sweeps the learning rate.
"""
