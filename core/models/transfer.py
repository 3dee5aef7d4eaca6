"""Starting a model from another one's weights when only the output differs.

A model with an instance-aware output (:data:`core.models.config.OUTPUT_HELP`) shares every layer but its
head with a binary model of the same architecture, so it can start from a trained binary model (the shipped
generalist, an earlier run) instead of from scratch: the network already finds cells, and only the split
between them is new. The new head starts where the binary head was, so the starting cell probability is
the donor's: for the three-class softmax, interior and boundary each take the donor's cell logit less ln 2
and background a logit of 0 (then ``P(cell) = sigmoid(donor logit)``); for the distance output the cell
channel copies the donor's head and the distance channel starts fresh.
"""

from __future__ import annotations

import logging
import math

import numpy as np

log = logging.getLogger(__name__)


def _fits(layer, weights: list[np.ndarray]) -> bool:
    return [tuple(w.shape) for w in layer.get_weights()] == [tuple(w.shape) for w in weights]


def head_from_binary(kernel: np.ndarray, bias: np.ndarray, output: str) -> dict[str, list[np.ndarray]]:
    """Starting weights of the ``output`` head's layers from a binary model's 1×1 sigmoid head.

    Examples
    --------
    >>> kernel, bias = np.full((1, 1, 2, 1), 0.5, np.float32), np.array([1.0], np.float32)
    >>> head = head_from_binary(kernel, bias, "three_class")["classes"]
    >>> head[0][0, 0, :, 0].tolist(), [round(float(b), 4) for b in head[1]]
    ([0.0, 0.0], [0.0, 0.3069, 0.3069])
    """
    if output == "three_class":
        classes_kernel = np.concatenate([np.zeros_like(kernel), kernel, kernel], axis=-1)
        classes_bias = np.concatenate([[0.0], bias - math.log(2), bias - math.log(2)]).astype(bias.dtype)
        return {"classes": [classes_kernel, classes_bias]}
    if output == "distance":
        return {"cell": [kernel, bias]}
    return {"mask": [kernel, bias]}


def transfer_weights(donor, model) -> tuple[int, list[str]]:
    """Copy every layer of ``donor`` whose name and weight shapes match into ``model``; start an
    instance-aware head from a binary donor's head. Returns the number of layers taken and the names of
    the layers left as initialised."""
    by_name = {layer.name: layer for layer in donor.layers if layer.get_weights()}
    starts: dict[str, list[np.ndarray]] = {}
    donor_head = by_name.get("mask")
    if donor_head is not None and len(donor_head.get_weights()) == 2 and donor_head.get_weights()[0].shape[-1] == 1:
        kernel, bias = donor_head.get_weights()
        for output in ("three_class", "distance"):
            starts.update(head_from_binary(kernel, bias, output))
    taken, fresh = 0, []
    for layer in model.layers:
        if not layer.trainable_weights:
            continue
        source = by_name.get(layer.name)
        if source is not None and _fits(layer, source.get_weights()):
            layer.set_weights(source.get_weights())
            taken += 1
        elif layer.name in starts and _fits(layer, starts[layer.name]):
            layer.set_weights(starts[layer.name])
            taken += 1
        else:
            fresh.append(layer.name)
    return taken, fresh
