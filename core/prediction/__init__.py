"""Prediction of new images with a trained run: the job that writes masks, cells, tracks and tables.

- :mod:`core.prediction.job`: :func:`~core.prediction.job.predict_files`, in one process (images, slides and
  videos), the outputs' folder layout and the tables of cells and images;
- :mod:`core.prediction.dask_cluster`: the same outputs from units of work spread over Dask workers (many
  images, or slides cut into blocks), resumable.

Both load the model (TensorFlow): a worker or the command line runs them, never the dashboard server.
"""
