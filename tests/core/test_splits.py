"""Split sizes, group-aware assignment, leakage findings and perceptual hashes."""

import numpy as np
import pytest

from core.config import SplitOptions
from core.datasets.hashing import hamming_matrix, perceptual_hash, pixel_checksum
from core.datasets.splits import assign_splits, leakage_findings, near_pairs, similarity_groups, split_counts


@pytest.mark.parametrize(
    "n, options, expected",
    [
        (20, SplitOptions(), {"train": 14, "valid": 3, "test": 3}),
        (3, SplitOptions(), {"train": 1, "valid": 1, "test": 1}),
        (2, SplitOptions(), {"train": 2, "valid": 0, "test": 0}),
        (10, SplitOptions(train=0.8, valid=0.2, test=0.0), {"train": 8, "valid": 2, "test": 0}),
        (100, SplitOptions(train=0.5, valid=0.25, test=0.25), {"train": 50, "valid": 25, "test": 25}),
    ],
)
def test_split_counts(n, options, expected):
    assert split_counts(n, options) == expected


def test_assignment_depends_on_seed_only():
    stems = [f"s{i:02d}" for i in range(30)]
    groups = list(range(30))
    same = assign_splits(stems, groups, SplitOptions(seed=1)) == assign_splits(stems, groups, SplitOptions(seed=1))
    different = assign_splits(stems, groups, SplitOptions(seed=1)) != assign_splits(stems, groups, SplitOptions(seed=2))
    assert same and different


def test_groups_are_never_split_across_splits():
    stems = [f"s{i}" for i in range(12)]
    groups = [0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8]
    assignment = assign_splits(stems, groups, SplitOptions(seed=3))
    assert len({assignment[s] for s in stems[:3]}) == 1 and assignment["s3"] == assignment["s4"]


def test_similarity_groups_join_exact_and_near_copies():
    assert similarity_groups(["a", "b", "c", "a"], [0b0000, 0b0001, 0b1111_0000, 0b1111_1111], 1) == [0, 0, 1, 0]


def test_near_pairs_in_blocks_match_the_full_matrix():
    hashes = list(np.random.default_rng(0).integers(0, 2**16, 700))
    full = {(i, j) for i, j in zip(*np.nonzero(np.triu(hamming_matrix(np.array(hashes), np.array(hashes)) <= 2, 1)))}
    assert set(near_pairs(hashes, 2, block=64)) == full


def test_leakage_findings_kinds():
    findings = leakage_findings(
        ["a.png", "b.png", "c.png", "d.png"],
        ["train", "test", "train", "valid"],
        ["x", "x", "y", "z"],
        [0, 0, 0xFFFF0000, 0xFFFF0001],
        max_bits=2,
        stems=["a", "b", "c", "d"],
    )
    codes = sorted(f.code for f in findings)
    assert codes == ["leak-duplicate", "leak-near-duplicate"]
    duplicate = next(f for f in findings if f.code == "leak-duplicate")
    assert duplicate.file == "b.png" and duplicate.stem == "b" and "a.png" in duplicate.message


def test_many_findings_are_summarised():
    n = 120
    findings = leakage_findings([f"{i}.png" for i in range(n)], ["train"] * n, ["same"] * n, list(range(n)), 0)
    assert len(findings) == 51 and "69 more findings" in findings[-1].message


def test_pixel_checksum_ignores_encoding_but_not_pixels():
    a = np.arange(16, dtype=np.uint8).reshape(4, 4)
    assert pixel_checksum(a) == pixel_checksum(a.copy())
    assert pixel_checksum(a) != pixel_checksum(a + 1)
    assert pixel_checksum(a) != pixel_checksum(a.astype(np.uint16))


def test_perceptual_hash_tolerates_brightness_and_noise_but_not_other_images():
    rng = np.random.default_rng(0)
    image = np.kron(rng.integers(0, 255, (8, 8)), np.ones((16, 16))).astype(np.uint8)
    brighter = np.clip(image.astype(int) + 20, 0, 255).astype(np.uint8)
    noisy = np.clip(image + rng.normal(0, 5, image.shape), 0, 255).astype(np.uint8)
    other = np.kron(rng.integers(0, 255, (8, 8)), np.ones((16, 16))).astype(np.uint8)

    def distance(a, b):
        return int(hamming_matrix(np.array([perceptual_hash(a)]), np.array([perceptual_hash(b)]))[0, 0])

    assert distance(image, brighter) <= 6 and distance(image, noisy) <= 6
    assert distance(image, other) > 12
