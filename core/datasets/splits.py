"""Splitting into train/valid/test, and finding duplicates that would leak between splits."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from core.config import SplitOptions
from core.datasets.hashing import hamming_matrix
from core.datasets.report import Finding

SPLITS = ("train", "valid", "test")
_MAX_FINDINGS_PER_KIND = 50


def split_counts(n: int, options: SplitOptions) -> dict[str, int]:
    """How many images go to each split; every non-zero fraction gets at least one image when n >= 3.

    >>> split_counts(20, SplitOptions())
    {'train': 14, 'valid': 3, 'test': 3}
    >>> split_counts(3, SplitOptions())
    {'train': 1, 'valid': 1, 'test': 1}
    """
    counts = {}
    for name in ("valid", "test"):
        fraction = getattr(options, name)
        count = int(np.floor(n * fraction + 0.5))
        counts[name] = max(count, 1) if fraction > 0 and n >= 3 else count
    counts["train"] = n - counts["valid"] - counts["test"]
    return {name: counts[name] for name in SPLITS}


def near_pairs(phashes: list[int], max_bits: int, block: int = 512) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, whose perceptual hashes differ in at most ``max_bits`` bits.

    >>> near_pairs([0, 1, 255], 1)
    [(0, 1)]
    """
    if max_bits <= 0 or len(phashes) < 2:
        return []
    hashes = np.asarray(phashes, dtype=np.int64)
    pairs = []
    for start in range(0, len(hashes), block):
        distances = hamming_matrix(hashes[start : start + block], hashes)
        for a, b in zip(*np.nonzero(distances <= max_bits)):
            if start + a < b:
                pairs.append((int(start + a), int(b)))
    return pairs


def similarity_groups(checksums: list[str], phashes: list[int], max_bits: int) -> list[int]:
    """Group ids joining identical and near-identical images (union-find), so they stay in one split.

    >>> similarity_groups(["a", "b", "a"], [0, 255, 1], 0)
    [0, 1, 0]
    """
    parent = list(range(len(checksums)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(i: int, j: int) -> None:
        parent[find(i)] = find(j)

    first_seen: dict[str, int] = {}
    for i, checksum in enumerate(checksums):
        if checksum in first_seen:
            join(i, first_seen[checksum])
        first_seen.setdefault(checksum, i)
    for i, j in near_pairs(phashes, max_bits):
        join(i, j)
    roots = [find(i) for i in range(len(parent))]
    renumber = {root: k for k, root in enumerate(dict.fromkeys(roots))}
    return [renumber[r] for r in roots]


def assign_splits(stems: list[str], groups: list[int], options: SplitOptions) -> dict[str, str]:
    """Assign each stem a split by shuffling whole groups with the seed (reproducible).

    >>> stems = [f"s{i}" for i in range(20)]
    >>> list(assign_splits(stems, list(range(20)), SplitOptions()).values()).count("train")
    14
    """
    members: dict[int, list[str]] = defaultdict(list)
    for stem, group in zip(stems, groups):
        members[group].append(stem)
    order = sorted(members, key=lambda g: min(members[g]))
    rng = np.random.default_rng(options.seed)
    rng.shuffle(order)
    targets = split_counts(len(stems), options)
    assignment: dict[str, str] = {}
    filled = {name: 0 for name in SPLITS}
    for group in order:
        split = next((s for s in ("test", "valid") if filled[s] < targets[s]), "train")
        for stem in members[group]:
            assignment[stem] = split
        filled[split] += len(members[group])
    return assignment


def leakage_findings(
    files: list[str],
    splits: list[str],
    checksums: list[str],
    phashes: list[int],
    max_bits: int,
    stems: list[str] | None = None,
) -> list[Finding]:
    """Identical images in two splits (error), within a split (warning), near-duplicates across splits (warning).

    Each finding carries the stem of the later copy, so skipping invalid pairs drops that copy.
    """
    findings: list[Finding] = []
    counts: dict[str, int] = defaultdict(int)

    def report(severity, code, i, j, message, hint):
        counts[code] += 1
        if counts[code] <= _MAX_FINDINGS_PER_KIND:
            findings.append(
                Finding(
                    severity,
                    code,
                    files[i],
                    message.format(other=files[j]),
                    hint,
                    stem=stems[i] if stems and severity == "error" else None,
                )
            )

    first_seen: dict[str, int] = {}
    for i, checksum in enumerate(checksums):
        j = first_seen.setdefault(checksum, i)
        if j == i:
            continue
        if splits[i] != splits[j]:
            report(
                "error",
                "leak-duplicate",
                i,
                j,
                f"is identical to {{other}} but one is in {splits[j]} and "
                f"the other in {splits[i]}: the model would be tested on an image it trained on.",
                "Remove one copy, or put both in the same split.",
            )
        else:
            report("warning", "duplicate-image", i, j, "is identical to {other}.", "Remove one of the copies.")
    for i, j in near_pairs(phashes, max_bits):
        if splits[i] != splits[j] and checksums[i] != checksums[j]:
            report(
                "warning",
                "leak-near-duplicate",
                j,
                i,
                f"looks almost the same as {{other}} ({splits[j]} vs {splits[i]}); near-duplicates in "
                "different splits make test scores look better than they are.",
                "Check both images; keep near-copies (crops, re-exports) in one split.",
            )
    for code, count in counts.items():
        if count > _MAX_FINDINGS_PER_KIND:
            findings.append(
                Finding(
                    "warning",
                    code,
                    "(several files)",
                    f"{count - _MAX_FINDINGS_PER_KIND} more findings of this kind not listed.",
                )
            )
    return findings
