"""Label states: where each image's current mask came from, and which masks may teach or score a model.

- ``unlabelled``: no mask yet (imported without one); its mask file is empty;
- ``proposed``: drawn by a model (the run or shipped model is recorded), waiting for a person;
- ``corrected``: saved by a person in the editor (from scratch, from a proposal, or fixing an imported mask);
- ``truth``: imported with a mask.

Only ``truth`` and ``corrected`` masks train or score a model; a machine never overwrites a person's save.
A manifest row without a ``label`` predates label states and holds an imported mask: ``truth``.
"""

from __future__ import annotations

from typing import Any

LABEL_STATES = ("unlabelled", "proposed", "corrected", "truth")
TRAINABLE = ("truth", "corrected")
PERSON_MADE = ("truth", "corrected")
LABEL_HELP = {
    "unlabelled": "no mask yet",
    "proposed": "drawn by a model, waiting for a person to correct or accept it",
    "corrected": "saved by a person in the editor",
    "truth": "imported with its mask",
}


def label_of(row: dict[str, Any]) -> str:
    """The label state of a manifest row.

    >>> label_of({"stem": "a"}), label_of({"label": "proposed"})
    ('truth', 'proposed')
    """
    label = row.get("label") or "truth"
    if label not in LABEL_STATES:
        raise ValueError(f"unknown label state {label!r}; expected one of {', '.join(LABEL_STATES)}")
    return label


def trainable(row: dict[str, Any]) -> bool:
    """Whether the row's mask may train or score a model (``truth`` or ``corrected``).

    >>> trainable({}), trainable({"label": "corrected"}), trainable({"label": "proposed"})
    (True, True, False)
    """
    return label_of(row) in TRAINABLE


def label_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """How many rows are in each label state (all four states, zeros included).

    >>> label_counts([{}, {"label": "unlabelled"}, {"label": "unlabelled"}])
    {'unlabelled': 2, 'proposed': 0, 'corrected': 0, 'truth': 1}
    """
    counts = dict.fromkeys(LABEL_STATES, 0)
    for row in rows:
        counts[label_of(row)] += 1
    return counts
