"""The correction queue: uncertain first, but typical of the dataset and unlike what already trains the model."""

import numpy as np
import pytest

from core.proposals.correction_queue import (
    SIGNATURES,
    correction_order,
    dataset_signatures,
    distances,
    image_signature,
    queue,
    training_stems,
)
from core.datasets.manifest import MANIFEST_FORMAT, read_manifest, write_manifest
from core.io import write_png

A, B, C = np.eye(3)  # three kinds of image, nothing in common
NEAR_A = np.array([0.9, 0.1, 0.0])


@pytest.mark.parametrize(
    "uncertainty, signatures, training, expected",
    [
        # no signatures at all: plain uncertainty order
        ({"x": 0.2, "y": 0.9, "z": 0.5}, {}, (), ["y", "z", "x"]),
        # two look-alikes: the second waits until another kind has been picked
        ({"a": 0.9, "a2": 0.8, "b": 0.5}, {"a": A, "a2": A, "b": B}, (), ["a", "b", "a2"]),
        # kind A already trains the model: the B image first, although less uncertain
        ({"a": 0.9, "b": 0.5}, {"a": A, "b": B, "t": NEAR_A}, ("t",), ["b", "a"]),
        # an outlier (kind C, alone) comes after the typical images of equal doubt
        ({"a": 0.5, "b": 0.5, "c": 0.5}, {"a": A, "b": B, "c": C, "a3": A, "b3": B}, (), ["a", "b", "c"]),
        # an image without a signature counts as typical and new: ordered by its uncertainty
        ({"a": 0.9, "new": 0.8}, {"a": A, "b": B}, ("b",), ["a", "new"]),
        # nothing waits
        ({}, {"a": A, "b": B}, (), []),
    ],
)
def test_correction_order(uncertainty, signatures, training, expected):
    assert correction_order(uncertainty, signatures, training) == expected


def test_the_limit_cuts_the_same_order():
    uncertainty = {f"s{i}": i / 10 for i in range(10)}
    signatures = {stem: (A if i % 2 else B) + 0.01 * i for i, stem in enumerate(uncertainty)}
    assert correction_order(uncertainty, signatures, limit=3) == correction_order(uncertainty, signatures)[:3]


@pytest.mark.parametrize(
    "image, note",
    [
        (np.zeros((8, 8), np.uint8), "black"),
        (np.random.default_rng(0).integers(0, 65535, (300, 500), dtype=np.uint16), "16-bit, resized"),
        (np.random.default_rng(1).integers(0, 255, (20, 30, 3), dtype=np.uint8), "colour"),
    ],
)
def test_signatures_are_two_histograms_that_sum_to_one(image, note):
    signature = image_signature(image)
    assert signature.shape == (32,) and np.isclose(signature.sum(), 1.0), note
    assert np.isclose(signature[:16].sum(), 0.5) and np.isclose(signature[16:].sum(), 0.5), note


def test_exposure_alone_does_not_make_images_different():
    cells = np.zeros((64, 64), np.float32)
    cells[10:30, 10:30], cells[40:60, 35:55] = 1.0, 1.0
    dim, bright = (20 + 40 * cells).astype(np.uint8), (60 + 150 * cells).astype(np.uint8)
    stripes = np.tile((np.arange(64) % 4 < 2) * 200, (64, 1)).astype(np.uint8)
    signatures = np.stack([image_signature(dim), image_signature(bright), image_signature(stripes)])
    table = distances(signatures, signatures)
    assert table[0, 1] < 0.01 and table[0, 2] > 0.3


def test_training_stems_are_the_person_made_masks_of_the_training_split():
    rows = [
        {"stem": "t", "split": "train"},
        {"stem": "c", "split": "train", "label": "corrected"},
        {"stem": "p", "split": "train", "label": "proposed"},
        {"stem": "u", "split": "train", "label": "unlabelled"},
        {"stem": "v", "split": "valid", "label": "corrected"},
    ]
    assert training_stems(rows) == {"t", "c"}


@pytest.fixture
def folder(tmp_path):
    """A dataset of six proposals: four of one kind of image (dim blobs), two of another (stripes)."""
    rows = []
    blobs = np.zeros((48, 48), np.uint8)
    blobs[8:20, 8:20] = 120
    stripes = np.tile((np.arange(48) % 6 < 3) * 250, (48, 1)).astype(np.uint8)
    for index, (kind, doubt) in enumerate(
        [("blobs", 0.9), ("blobs", 0.8), ("blobs", 0.7), ("blobs", 0.6), ("stripes", 0.5), ("stripes", 0.1)]
    ):
        stem = f"{kind}{index}"
        write_png(tmp_path / "train" / "images" / f"{stem}.png", blobs if kind == "blobs" else stripes)
        rows.append(
            {
                "stem": stem,
                "split": "train",
                "image": f"train/images/{stem}.png",
                "mask": f"train/masks/{stem}.png",
                "label": "proposed",
                "proposed_by": "m",
                "uncertainty": doubt,
            }
        )
    write_manifest(tmp_path, {"format": MANIFEST_FORMAT, "name": "lab", "images": rows})
    return tmp_path


def test_the_queue_of_a_dataset_mixes_kinds_of_image_and_caches_signatures(folder):
    assert queue(folder)[:2] == ["blobs0", "stripes4"]
    assert (folder / SIGNATURES).is_file()
    assert queue(folder, limit=1, exclude=["blobs0"]) == ["stripes4"], "the open proposal counts as corrected"


def test_signatures_follow_changed_images_and_skip_unreadable_ones(folder):
    first = dataset_signatures(folder)
    write_png(
        folder / "train" / "images" / "blobs0.png", np.tile((np.arange(48) % 6 < 3) * 250, (48, 1)).astype(np.uint8)
    )
    (folder / "train" / "images" / "blobs1.png").write_bytes(b"not an image")
    again = dataset_signatures(folder)
    assert "blobs1" not in again and np.allclose(again["blobs0"], first["stripes4"])
    assert set(again) == set(first) - {"blobs1"}


def test_a_person_saved_image_leaves_the_queue(folder):
    manifest = read_manifest(folder)
    manifest["images"][0]["label"] = "corrected"
    write_manifest(folder, manifest)
    assert "blobs0" not in queue(folder) and queue(folder)[0] == "stripes4"


def test_without_two_proposals_waiting_no_image_is_read(folder):
    manifest = read_manifest(folder)
    for row in manifest["images"][1:]:
        row["label"] = "corrected"
    write_manifest(folder, manifest)
    assert queue(folder) == ["blobs0"] and queue(folder, exclude=["blobs0"]) == []
    assert not (folder / SIGNATURES).exists(), "a dataset without a queue gets no signature file"
