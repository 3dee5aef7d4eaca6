"""Mask operations, instance consistency, undo memory and versioned saves with conflict detection."""

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from filelock import FileLock, Timeout

from core.catalogue import store
from core.catalogue.datasets import editor_images, mask_history, record_mask_edit, sync_datasets
from core.config import ImportOptions
from core.datasets.importer import import_dataset
from core.datasets.manifest import read_manifest
from core.io import read_image
from core.masks.pixels import apply_layers, diff_overlay, fill_holes, object_at, remove_small, update_instances
from core.masks.undo import MaskState, UndoHistory
from core.masks.versions import (
    MaskChanged,
    MaskSaveError,
    current_version,
    dataset_lock,
    read_log,
    read_version,
    reviewed,
    save_mask,
    set_reviewed,
)
from tests.helpers import REPO, make_dsb

A = np.array


@pytest.mark.parametrize(
    "mask, add, erase, expected, added, removed",
    [
        (A([[0, 0]]), A([[1, 0]]), None, [[255, 0]], 1, 0),
        (A([[255, 255]]), None, A([[0, 1]]), [[255, 0]], 0, 1),
        (A([[0, 255]]), A([[1, 1]]), A([[1, 1]]), [[0, 0]], 0, 1),  # erase wins where both
        (A([[1, 1]]), A([[1, 0]]), None, [[255, 255]], 0, 0),  # 0/1 input comes out 0/255
    ],
)
def test_apply_layers(mask, add, erase, expected, added, removed):
    new, n_added, n_removed = apply_layers(
        mask.astype(np.uint8), None if add is None else add.astype(bool), None if erase is None else erase.astype(bool)
    )
    assert new.tolist() == expected and (n_added, n_removed) == (added, removed) and new.dtype == np.uint8


def test_fill_holes_keeps_open_background():
    mask = np.zeros((6, 6), np.uint8)
    mask[1:5, 1:5] = 255
    mask[2:4, 2:4] = 0  # enclosed hole
    mask[0, 0] = 0
    filled = fill_holes(mask)
    assert filled[2:4, 2:4].all() and filled[0, 0] == 0


@pytest.mark.parametrize("min_pixels, kept", [(1, 3), (2, 2), (5, 1), (10, 0)])
def test_remove_small_counts_8_connected_objects(min_pixels, kept):
    mask = np.zeros((8, 8), np.uint8)
    mask[0, 0] = 255  # 1 px
    mask[2, 2] = mask[3, 3] = 255  # 2 px, diagonal = one object
    mask[5:8, 5:8] = 255  # 9 px
    from core.masks.kinds import count_objects

    assert count_objects(remove_small(mask, min_pixels)) == kept


@pytest.mark.parametrize(
    "x, with_instances, size",
    [
        (0, True, 1),  # two touching cells: only the clicked one
        (1, True, 1),
        (0, False, 2),  # no instance ids: the connected region
        (3, False, 1),
        (2, False, None),  # background
        (9, False, None),  # outside the image
    ],
)
def test_object_at(x, with_instances, size):
    mask = A([[255, 255, 0, 255]]).astype(np.uint8)
    instances = A([[1, 2, 0, 3]]).astype(np.uint16) if with_instances else None
    found = object_at(mask, instances, x, 0)
    assert (None if found is None else int(found.sum())) == size


@pytest.mark.parametrize(
    "instances, new_mask, expected",
    [
        # erase part of cell 1
        ([[1, 1, 1, 0, 2]], [[255, 255, 0, 0, 255]], [[1, 1, 0, 0, 2]]),
        # cut cell 1 in two: two cells
        ([[1, 1, 1, 0, 0]], [[255, 0, 255, 0, 0]], [[1, 0, 2, 0, 0]]),
        # paint touching cell 2 grows it
        ([[1, 0, 0, 0, 2]], [[255, 0, 0, 255, 255]], [[1, 0, 0, 2, 2]]),
        # paint touching nothing makes a new cell
        ([[1, 0, 0, 0, 0]], [[255, 0, 255, 0, 0]], [[1, 0, 2, 0, 0]]),
        # paint bridging two cells is split between them by distance
        ([[1, 0, 0, 0, 2]], [[255, 255, 255, 255, 255]], [[1, 1, 1, 2, 2]]),
    ],
)
def test_update_instances(instances, new_mask, expected):
    out = update_instances(A(instances, np.uint16), A(new_mask, np.uint8))
    assert out.tolist() == expected and out.dtype == np.uint16


def test_diff_overlay_colours():
    out = diff_overlay(np.zeros((1, 3, 3), np.uint8), A([[255, 255, 0]]), A([[255, 0, 255]]), opacity=1.0)
    assert out[0, 0].tolist() == [0, 0, 0] and out[0, 1].tolist() == [230, 0, 0] and out[0, 2].tolist() == [0, 200, 0]


def test_undo_redo_round_trip_with_instances():
    history = UndoHistory()
    states = [MaskState(np.zeros((20, 20), np.uint8), np.zeros((20, 20), np.uint16))]
    for k in range(5):
        binary = states[-1].binary.copy()
        instances = states[-1].instances.copy()
        binary[k * 4 : k * 4 + 3, 2:6] = 255
        instances[k * 4 : k * 4 + 3, 2:6] = k + 1
        states.append(MaskState(binary, instances))
        history.record(states[-2], states[-1], "paint")
    current = states[-1]
    for expected in reversed(states[:-1]):
        current = history.undo(current)
        np.testing.assert_array_equal(current.binary, expected.binary)
        np.testing.assert_array_equal(current.instances, expected.instances)
    assert history.undo(current) is None
    for expected in states[1:]:
        current = history.redo(current)
        np.testing.assert_array_equal(current.instances, expected.instances)


def test_undo_memory_for_100_strokes_on_a_large_mask_is_small():
    history = UndoHistory()
    state = MaskState(np.zeros((1200, 1600), np.uint8))
    rng = np.random.default_rng(0)
    for _ in range(100):
        binary = state.binary.copy()
        y, x = rng.integers(0, 1150), rng.integers(0, 1550)
        binary[y : y + 40, x : x + 40] = 255
        new = MaskState(binary)
        history.record(state, new, "paint")
        state = new
    assert history.nbytes < 2_000_000, history.nbytes  # a single raw copy of the mask is 1.9 MB


@pytest.fixture
def dataset(tmp_path, settings):
    result = import_dataset(make_dsb(tmp_path / "src", n=4), ImportOptions(name="cells"), settings)
    row = read_manifest(result.path)["images"][0]
    return result.path, row


def _state(dataset_dir, row):
    return MaskState(read_image(dataset_dir / row["mask"]), read_image(dataset_dir / row["instances"]))


def test_save_keeps_the_original_and_every_version(dataset):
    folder, row = dataset
    original = read_image(folder / row["mask"])
    state = _state(folder, row)
    edited = state.binary.copy()
    edited[:4, :4] = 255
    saved = save_mask(folder, row, MaskState(edited, update_instances(state.instances, edited)), 0, tool="paint×2")
    assert saved.version == 1 and saved.pixels_added == int(((edited > 0) & (original == 0)).sum())
    assert current_version(folder, row["stem"]) == 1
    np.testing.assert_array_equal(read_image(folder / row["mask"]), edited)
    np.testing.assert_array_equal(read_version(folder, row["stem"], 0).binary, original)
    log = read_log(folder, row["stem"])
    assert log[0]["tool"] == "paint×2" and log[0]["previous_path"].endswith("v0000.png")
    manifest_row = next(r for r in read_manifest(folder)["images"] if r["stem"] == row["stem"])
    assert manifest_row["foreground_fraction"] == saved.foreground_fraction


def test_second_tab_saving_an_old_version_is_refused_then_forced(dataset):
    folder, row = dataset
    state = _state(folder, row)
    save_mask(folder, row, MaskState(np.zeros_like(state.binary), np.zeros_like(state.instances)), 0, tool="clear")
    with pytest.raises(MaskChanged) as raised:
        save_mask(folder, row, state, 0, tool="paint")  # the other tab still thinks version 0 is current
    assert raised.value.current == 1 and "changed since you opened it" in str(raised.value)
    assert read_image(folder / row["mask"]).max() == 0, "the refused save wrote nothing"
    forced = save_mask(folder, row, state, 0, tool="paint", force=True)
    assert forced.version == 2 and read_version(folder, row["stem"], 1).binary.max() == 0


def test_concurrent_saves_never_lose_a_version(dataset):
    folder, row = dataset
    state = _state(folder, row)
    errors = []

    def save(k):
        try:
            binary = state.binary.copy()
            binary[k, :] = 255
            save_mask(folder, row, MaskState(binary, state.instances), 0, tool=f"t{k}", force=True)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(k,)) for k in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert current_version(folder, row["stem"]) == 6
    assert sorted(e["version"] for e in read_log(folder, row["stem"])) == [1, 2, 3, 4, 5, 6]


_HOLDER = """
import sys, time
from pathlib import Path
from core.masks.versions import dataset_lock
with dataset_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(120)
"""


def test_dataset_lock_is_held_across_processes_and_freed_when_its_holder_dies(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(Timeout):
            FileLock(tmp_path / ".lock").acquire(timeout=0)
    finally:
        holder.kill()  # no release of its own: the operating system frees the lock of a dead process
        holder.wait(timeout=30)
        holder.stdout.close()
    with dataset_lock(tmp_path):
        pass


def test_dataset_lock_taken_twice_by_one_thread_fails_instead_of_hanging(tmp_path):
    with dataset_lock(tmp_path), pytest.raises(RuntimeError, match="Deadlock"):
        with dataset_lock(tmp_path):
            pass


def test_dataset_lock_of_a_deleted_dataset_does_not_bring_its_folder_back(tmp_path):
    gone = tmp_path / "deleted"
    with pytest.raises(FileNotFoundError), dataset_lock(gone):
        pass
    assert not gone.exists()


def test_interrupted_save_leaves_the_previous_mask_intact(dataset, monkeypatch):
    folder, row = dataset
    before = (folder / row["mask"]).read_bytes()

    def crash(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("core.io.os.fsync", crash)
    with pytest.raises(MaskSaveError, match="No space left on device.*previous version is unchanged"):
        save_mask(folder, row, MaskState(np.zeros((48, 48), np.uint8)), 0, tool="clear")
    assert (folder / row["mask"]).read_bytes() == before
    assert not [p for p in (folder / row["mask"]).parent.iterdir() if p.name.endswith(".tmp")]


def test_write_refused_by_the_file_system_gives_a_clear_message(dataset, monkeypatch):
    folder, row = dataset
    before = (folder / row["mask"]).read_bytes()

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("core.io.tempfile.mkstemp", refused)
    with pytest.raises(MaskSaveError, match="is read-only .*previous version is unchanged"):
        save_mask(folder, row, MaskState(np.zeros((48, 48), np.uint8)), 0, tool="clear")
    assert (folder / row["mask"]).read_bytes() == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_dataset_gives_a_clear_message(dataset):
    folder, row = dataset
    os.chmod(folder, 0o555)
    try:
        with pytest.raises(MaskSaveError, match="read-only"):
            save_mask(folder, row, MaskState(np.zeros((48, 48), np.uint8)), 0, tool="clear")
    finally:
        os.chmod(folder, 0o755)


def test_reviews_and_catalogue_ingest_of_edits(dataset, settings):
    folder, row = dataset
    state = _state(folder, row)
    saved = save_mask(
        folder,
        row,
        MaskState(np.zeros_like(state.binary), np.zeros_like(state.instances)),
        0,
        tool="clear",
        note="no cells here",
    )
    when = set_reviewed(folder, row["stem"], True)
    assert reviewed(folder) == {row["stem"]: when}
    con = store.connect(settings.catalogue_path)
    sync_datasets(con, settings.datasets_dir)
    history = mask_history(con, "cells", row["stem"])
    assert history["version"].tolist() == [1] and history["note"].tolist() == ["no cells here"]
    images = editor_images(con, "cells", ["train", "valid", "test"]).set_index("stem")
    assert images.loc[row["stem"], "mask_version"] == 1 and images.loc[row["stem"], "foreground_fraction"] == 0
    assert images["reviewed_at"].notna().sum() == 1
    # the live index update after a save matches what a full re-ingest gives
    record_mask_edit(con, "cells", folder, saved)
    assert sync_datasets(con, settings.datasets_dir)["added"] == []
    set_reviewed(folder, row["stem"], False)
    assert reviewed(folder) == {}
    assert json.loads((folder / "edits" / "reviewed.json").read_text()) == {}
