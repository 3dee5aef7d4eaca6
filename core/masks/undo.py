"""Undo and redo for mask edits, kept small: each step stores only a compressed difference.

A stroke changes a few hundred pixels of a mask that may have millions; the XOR of
before and after is almost all zeros and compresses to a few hundred bytes, so a
long editing session costs kilobytes, not one full mask copy per step.
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class MaskState:
    """A binary mask (uint8 0/255) and, when the dataset has them, its instance ids (uint16)."""

    binary: np.ndarray
    instances: np.ndarray | None = None


@dataclass(frozen=True)
class _Step:
    label: str
    binary_xor: bytes
    instances_xor: bytes | None
    shape: tuple[int, int]
    serial: int = 0

    @property
    def nbytes(self) -> int:
        return len(self.binary_xor) + len(self.instances_xor or b"")


def _pack_binary(a: np.ndarray, b: np.ndarray) -> bytes:
    return zlib.compress(np.packbits((a > 0) ^ (b > 0)).tobytes(), 1)


def _unpack_binary(payload: bytes, shape: tuple[int, int]) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(zlib.decompress(payload), np.uint8), count=shape[0] * shape[1])
    return bits.reshape(shape).astype(bool)


def _apply(state: MaskState, step: _Step) -> MaskState:
    flipped = _unpack_binary(step.binary_xor, step.shape)
    binary = np.where((state.binary > 0) ^ flipped, 255, 0).astype(np.uint8)
    instances = state.instances
    if step.instances_xor is not None and instances is not None:
        xor = np.frombuffer(zlib.decompress(step.instances_xor), np.uint16).reshape(step.shape)
        instances = instances ^ xor
    return MaskState(binary, instances)


@dataclass
class UndoHistory:
    """Undo/redo stacks of mask changes, at most ``limit`` steps deep.

    >>> history = UndoHistory()
    >>> before = MaskState(np.zeros((2, 2), np.uint8)); after = MaskState(np.full((2, 2), 255, np.uint8))
    >>> history.record(before, after, "paint")
    >>> history.undo(after).binary.tolist(), history.can_redo
    ([[0, 0], [0, 0]], True)

    It also knows whether the mask differs from the last saved one: undoing every edit since the
    save brings it back to "saved".

    >>> history.unsaved, history.unsaved_changes()
    (False, '')
    >>> history.redo(before) is not None, history.unsaved, history.unsaved_changes()
    (True, True, 'paint')
    """

    limit: int = 500
    _undo: list[_Step] = field(default_factory=list)
    _redo: list[_Step] = field(default_factory=list)
    _serial: int = 0
    _saved_at: int = 0  # serial of the newest applied step when the mask was last saved (0: as loaded)

    def record(self, before: MaskState, after: MaskState, label: str) -> None:
        """Remember one edit; a new edit clears the redo stack."""
        instances_xor = None
        if before.instances is not None and after.instances is not None:
            instances_xor = zlib.compress((before.instances ^ after.instances).tobytes(), 1)
        self._serial += 1
        self._undo.append(
            _Step(label, _pack_binary(before.binary, after.binary), instances_xor, before.binary.shape, self._serial)
        )
        del self._undo[: -self.limit]
        self._redo.clear()

    @property
    def _top(self) -> int:
        return self._undo[-1].serial if self._undo else 0

    def mark_saved(self) -> None:
        """The current mask has just been saved."""
        self._saved_at = self._top

    @property
    def unsaved(self) -> bool:
        """Whether the mask differs from the last saved (or loaded) one."""
        return self._top != self._saved_at

    def unsaved_changes(self) -> str:
        """The edits between the saved mask and now, e.g. ``'paint×2, erase'`` or ``'undone: fill-holes'``.

        >>> h = UndoHistory(); a = MaskState(np.zeros((1, 1), np.uint8)); b = MaskState(np.ones((1, 1), np.uint8))
        >>> h.record(a, b, "paint"); h.record(b, a, "erase"); h.record(a, b, "paint"); h.unsaved_changes()
        'paint×2, erase'
        >>> h.mark_saved(); _ = h.undo(b); h.unsaved_changes()
        'undone: paint'
        """
        serials = [step.serial for step in self._undo]
        redo_serials = [step.serial for step in self._redo]
        if self._saved_at in redo_serials:  # edits that were saved have been undone since
            applied, undone = [], self._redo[redo_serials.index(self._saved_at) :]
        else:  # edits made since the save (all that can be undone, when the save point is out of reach)
            start = serials.index(self._saved_at) + 1 if self._saved_at in serials else 0
            applied, undone = self._undo[start:], []
        parts = [_counted([step.label for step in applied])]
        if undone:
            parts.append("undone: " + _counted([step.label for step in undone]))
        return ", ".join(part for part in parts if part)

    def undo(self, current: MaskState) -> MaskState | None:
        if not self._undo:
            return None
        step = self._undo.pop()
        self._redo.append(step)
        return _apply(current, step)

    def redo(self, current: MaskState) -> MaskState | None:
        if not self._redo:
            return None
        step = self._redo.pop()
        self._undo.append(step)
        return _apply(current, step)

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def labels(self) -> list[str]:
        """The tools of the edits that can be undone, oldest first."""
        return [step.label for step in self._undo]

    @property
    def nbytes(self) -> int:
        """Memory held by both stacks (compressed differences)."""
        return sum(step.nbytes for step in self._undo + self._redo)

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
        self._saved_at = 0


def _counted(labels: list[str]) -> str:
    """``['paint', 'erase', 'paint']`` → ``'paint×2, erase'`` (most used first)."""
    return ", ".join(f"{label}×{n}" if n > 1 else label for label, n in Counter(labels).most_common())
