"""The ``README.md`` of a run's bioimage.io package: what the model segments, its training data and scores,
how its input is normalised and how to threshold its output — from the same :class:`Facts` as ``rdf.yaml``.

The spec asks for a section on validation (how the model was scored on unseen images); it is there.
"""

from __future__ import annotations

from core.interop.model_zoo.rdf import FILES, ONNX_OPSET, PERCENTILES, Facts


def _score_rows(facts: Facts) -> str:
    metrics = {label: values for label, values in facts.card.get("metrics", {}).items() if isinstance(values, dict)}
    metrics.update({f"test of {name}": values for name, values in facts.scores.items()})
    rows = [
        f"| {label} | {values.get('n_images', values.get('images', '—'))} | "
        + " | ".join(
            f"{values[key]:.3f}" if isinstance(values.get(key), (int, float)) else "—"
            for key in ("dice", "iou", "f1_50", "ap")
        )
        + " |"
        for label, values in metrics.items()
    ]
    return "\n".join(rows) or "| (not evaluated yet) | | | | | |"


def _training_images(lineage: dict) -> str:
    """The training images in words (a run counts its splits, a shipped model its source datasets).

    >>> _training_images({"images": {"train": 3, "valid": 2}}), _training_images({"datasets": {"a": 5}})
    (': 3 train and 2 valid images with masks made by a person', ': 5 images of a')
    """
    if lineage.get("datasets"):
        return ": " + ", ".join(f"{count} images of {name}" for name, count in lineage["datasets"].items())
    counts = [f"{count} {split}" for split, count in (lineage.get("images") or {}).items()]
    if not counts:
        return ""
    listed = " and ".join([", ".join(counts[:-1]), counts[-1]] if len(counts) > 1 else counts)
    return f": {listed} images with masks made by a person"


def _channel_sentence(channels: tuple[str, ...]) -> str:
    """How to fill the input channels from an image that has other channels than the model reads."""
    if channels == ("red", "green", "blue"):
        return "Give a grey image as three identical channels (the dashboard repeats it); drop an alpha channel."
    if channels == ("channel_mean",):
        return "The single channel is the mean of the image's channels (take it before normalising)."
    if all(name.startswith("channel") for name in channels):
        return f"The channels are the image's channels {', '.join(name[7:] for name in channels)} (counted from 0)."
    return "A colour image is averaged into its grey value (the dashboard does so)."


def _processing_sentence(settings: dict) -> str:
    """What the dashboard does after the threshold (:class:`core.postprocess.PostProcessing`), in words."""
    steps = (
        (["holes inside cells are filled"] if settings.get("fill_holes") else [])
        + [f"cells under {settings.get('min_size', 0)} pixels are removed"]
        + (
            [f"touching cells are split where their centres lie at least {settings.get('min_distance')} pixels apart"]
            if settings.get("split_touching")
            else []
        )
    )
    return "After it the dashboard's post-processing: " + "; ".join(steps) + "."


def readme_text(facts: Facts) -> str:
    """The package's ``README.md``: what the model segments, its data and scores, its input and its output."""
    card = facts.card
    low, high = PERCENTILES[facts.normalisation]
    best = card.get("metrics", {}).get("best_val_dice")
    return f"""# {facts.title}

{facts.description}

## Training data

Dataset `{card["training_data"]["dataset"]}`{_training_images(card["training_data"].get("lineage") or {})}, in
patches of {card["patch_size"]} pixels (run `{facts.run_id}`; best validation Dice
{f"{best:.3f}" if isinstance(best, (int, float)) else "not recorded"}).

## Validation

Scores of the run (mean per image; F1 at IoU 0.5 and AP over IoU 0.5–0.95 count cells, as StarDist defines them):

| image set | images | Dice | IoU | F1@0.5 | AP |
|---|---|---|---|---|---|
{_score_rows(facts)}

`test_input.npy` run through the model gives `test_output.npy`.

## Input

A 2D image with axes batch, y, x, channel and {len(facts.channels)} channel(s) ({", ".join(facts.channels)}); height
and width multiples of {facts.multiple}. Each image is normalised on its own: the {low:g}th–{high:g}th percentile of
all its pixels and channels is mapped to 0–1 and values outside are clipped (`scale_range` then `clip` in rdf.yaml).
{_channel_sentence(facts.channels)}
The dashboard estimates the percentiles on a regular grid of about 500,000 pixels for larger images.

## Output and threshold

{len(facts.outputs)} channel(s) ({", ".join(facts.outputs)}) of the same height and width: channel 0 is the
probability that the pixel belongs to a cell. **Threshold it at {facts.threshold:g}** (chosen for this run;
`config.cellseg.threshold` in rdf.yaml). {_processing_sentence(card["postprocessing"])}

## Weights

Keras 3 (`{FILES["keras"]}`, the original), TensorFlow SavedModel (`{FILES["saved_model"]}`) and ONNX
(`{FILES["onnx"]}`, opset {ONNX_OPSET}; largest difference to Keras on the test input
{facts.onnx_difference:.2g}).
"""
