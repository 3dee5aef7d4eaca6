"""What people say about a run: a display name, free-text notes, tags and a "deleted" mark.

They live in the run folder itself (``runs/<run id>/notes.json``, written atomically), not only in the
catalogue, so that re-indexing a run or rebuilding the whole catalogue from the folders keeps them.
A run marked deleted keeps its folder; lists simply hide it until it is restored.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from core.accounts import acting
from core.io import write_json_atomic
from core.runs.folder import RunDir

log = logging.getLogger(__name__)
NOTES_FILE = "notes.json"
MAX_NAME_LENGTH = 120


def normalise_tags(tags: Iterable[str] | str) -> tuple[str, ...]:
    """Tags stripped, lower-case, without blanks or repeats, sorted; a string is split at commas.

    >>> normalise_tags([" Best ", "best", "", "Baseline"])
    ('baseline', 'best')
    >>> normalise_tags("new masks, GPU")
    ('gpu', 'new masks')
    """
    if isinstance(tags, str):
        tags = tags.split(",")
    cleaned = set()
    for tag in tags:
        if not isinstance(tag, str):
            raise ValueError(f"A tag must be text, got {tag!r}.")
        if tag.strip():
            cleaned.add(tag.strip().lower())
    return tuple(sorted(cleaned))


@dataclass(frozen=True)
class RunNotes:
    """A run's annotations; tags are normalised on creation (see :func:`normalise_tags`).

    >>> RunNotes(name=" Baseline ", tags=("B", "a", "b")).tags
    ('a', 'b')
    >>> RunNotes.from_dict({"name": "x", "colour": "red"})
    Traceback (most recent call last):
    ...
    ValueError: Unknown notes key(s): colour. Allowed: name, notes, tags, deleted.
    """

    name: str = ""
    notes: str = ""
    tags: tuple[str, ...] = ()
    deleted: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not isinstance(self.notes, str):
            raise ValueError("name and notes must be text.")
        if not isinstance(self.deleted, bool):
            raise ValueError(f"deleted must be true or false, got {self.deleted!r}.")
        name = self.name.strip()
        if len(name) > MAX_NAME_LENGTH:
            raise ValueError(f"A run name has at most {MAX_NAME_LENGTH} characters; this one has {len(name)}.")
        # Frozen: normalising in place needs object.__setattr__, which is what dataclasses do themselves.
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "tags", normalise_tags(self.tags))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunNotes:
        """Build from ``notes.json``'s object; unknown keys are an error naming them."""
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise ValueError(f"Unknown notes key(s): {', '.join(unknown)}. Allowed: {', '.join(allowed)}.")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tags as a list).

        >>> RunNotes(tags=("a",)).to_dict()
        {'name': '', 'notes': '', 'tags': ['a'], 'deleted': False}
        """
        data = asdict(self)
        data["tags"] = list(self.tags)
        return data


def notes_path(run: RunDir) -> Path:
    """Where a run's notes are kept."""
    return run.path / NOTES_FILE


def read_notes(run: RunDir) -> RunNotes:
    """The run's notes; defaults when there are none, and (with a warning) when the file is unreadable."""
    path = notes_path(run)
    if not path.is_file():
        return RunNotes()  # the usual case: nobody has annotated the run yet
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("the file does not hold a JSON object")
        return RunNotes.from_dict(data)
    except (OSError, ValueError, TypeError) as exc:
        log.warning("notes of run %s ignored (%s): %s", run.run_id, path, exc)
        return RunNotes()


def write_notes(run: RunDir, notes: RunNotes) -> None:
    """Save the notes in the run folder (atomically: a crash leaves the old or the new file).

    Hiding a run or bringing it back needs ``run.delete``; any other change, ``run.edit_notes``.
    """
    if not run.path.is_dir():
        raise FileNotFoundError(f"The run folder {run.path} does not exist.")
    before = read_notes(run)
    action = "run.delete" if notes.deleted != before.deleted else "run.edit_notes"
    with acting.guarded(action, run.run_id, {"deleted": notes.deleted} if action == "run.delete" else None):
        write_json_atomic(notes_path(run), notes.to_dict())


def update_notes(run: RunDir, **changes: Any) -> RunNotes:
    """Change some fields of the saved notes (e.g. ``deleted=True``), save and return them."""
    notes = replace(read_notes(run), **changes)
    write_notes(run, notes)
    return notes
