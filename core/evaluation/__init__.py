"""Evaluating a model against ground truth: the scores, the matching of cells, and the evaluation of a run.

:mod:`core.evaluation.scores` scores one segmentation: pixel counts (Dice, IoU, precision, recall),
probability histograms from which the counts at any threshold follow without touching pixels again
(threshold sweeps, the best threshold), and the per-image rows and set-level summary that assemble them
with the cell scores. It re-exports the matching's scores, so callers find every score there.

:mod:`core.evaluation.matching` pairs true and predicted cells one-to-one by IoU, with StarDist's
definitions: detection TP/FP/FN, F1, average precision at each IoU threshold and panoptic quality.

:mod:`core.evaluation.review` re-scores saved probability maps (a *case* per image) with given
post-processing settings: the same code for the evaluation worker and for the Results page's live
controls, without TensorFlow.

:mod:`core.evaluation.job` evaluates a run on a test set: predicts every image, keeps the probability
maps, scores them and writes the per-image CSV and the summary into the run folder. Loading the model
imports TensorFlow, so it runs in a worker or the command line, never in the dashboard.
"""
