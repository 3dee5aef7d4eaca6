"""Faults the run folder and the mask history must survive, beyond those tested elsewhere.

Already covered (not repeated here): a dead worker or a live pid with a 10-minute-old heartbeat
(tests/core/test_jobs.py), a dead worker on the train page (tests/dashboard/test_train_page.py),
two tabs saving one mask and a full disk during fsync (tests/core/test_mask_edits.py), older
catalogue schemas (tests/core/test_store.py, tests/core/test_run_queries.py), kill -9 of a real
worker (tests/train/test_worker.py).

Added here: a missing, empty, garbled or non-object ``status.json`` (core and page), a worker
killed while the dashboard process that started it is gone (re-attached by a fresh process), and a
full disk at each write of a mask save.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core import jobs
from core.config import ImportOptions
from core.datasets.importer import import_dataset
from core.datasets.manifest import read_manifest
from core.io import read_image
from core.masks.undo import MaskState
from core.masks.versions import MaskChanged, MaskSaveError, current_version, read_log, save_mask
from core.runs.folder import RunDir, create_run
from core.train.config import TrainConfig
from core.jobs.local import _children, pid_alive
from tests.helpers import REPO, launch, make_dsb
from tests.train.test_worker import TINY, dataset, tiny_run, wait_for  # noqa: F401 - dataset is a fixture

BROKEN_STATUS = {
    "missing": None,
    "empty": b"",
    "garbled": b'{"state": "running", "pid": 12',  # cut off mid-write by something other than the worker
    "not an object": b'["running", 1234]',
    "binary junk": b"\x00\xff\xfe\x89PNG",
}


def _run_with_status(settings, payload: bytes | None) -> RunDir:
    config = TrainConfig(dataset="nuclei-sample")
    run = create_run(settings.data_root / "runs", {"train": config.to_dict(), "dataset_dir": "x"}, "unet")
    run.append_metrics(
        {
            "epoch": 1,
            "loss": 0.9,
            "val_loss": 1.0,
            "dice": 0.3,
            "val_dice": 0.25,
            "lr": 1e-3,
            "seconds": 20,
            "images_per_s": 12.0,
        }
    )
    if payload is None:
        run.status_path.unlink()
    else:
        run.status_path.write_bytes(payload)
    return run


def _open_train_page(**query) -> AppTest:
    st.cache_resource.clear()
    st.cache_data.clear()
    app = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=90)
    app.query_params.update(query)
    app.switch_page("../pages/train.py")
    app.run()
    return app


@pytest.mark.parametrize("case", list(BROKEN_STATUS))
def test_broken_status_file_reads_as_failed(settings, case):
    run = _run_with_status(settings, BROKEN_STATUS[case])
    status = jobs.refresh(run)
    assert status.state == "failed" and "status.json" in status.error
    assert jobs.stop(run) is False, "nothing to stop, and no crash"
    assert run.read_metrics()[0]["epoch"] == 1, "the recorded epochs are untouched"


@pytest.mark.parametrize("case", ["missing", "garbled", "not an object"])
def test_broken_status_file_is_shown_failed_on_the_train_page(data_env, case):
    run = _run_with_status(data_env, BROKEN_STATUS[case])
    try:
        app = _open_train_page(run=run.run_id)
    finally:
        st.cache_resource.clear()
        st.cache_data.clear()
    assert not app.exception, app.exception
    assert {m.label: m.value for m in app.metric}["State"] == "failed"
    assert any("The run failed" in e.value and "status.json" in e.value for e in app.error)
    assert len(app.get("plotly_chart")) == 1, "the recorded curve is still shown"


@pytest.mark.slow
def test_worker_outlives_its_launcher_and_a_fresh_process_sees_it_die(dataset):  # noqa: F811 - fixture
    """The process that launched the worker exits (as a restarted dashboard would); a new process re-attaches
    from the folder alone, sees it running, and sees a kill -9 as failed at its next look (no waiting for the
    heartbeat to go stale)."""
    run = tiny_run(dataset, epochs=200)
    launcher = (
        "import sys; from core.settings import load_settings; "
        "from core.runs.folder import RunDir; from pathlib import Path; from tests.helpers import launch; "
        "p = launch(RunDir(Path(sys.argv[1])), load_settings()); print(p.pid)"
    )
    done = subprocess.run(
        [sys.executable, "-c", launcher, str(run.path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        env={**os.environ, "CELLSEG_DATA": str(dataset.data_root)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    pid = int(done.stdout.strip().splitlines()[-1])
    try:
        wait_for(lambda: len(run.read_metrics()) >= 1)
        assert jobs.refresh(run).state == "running", "the worker survived its launcher"
        assert pid not in _children, "this process did not start it: it re-attached from the folder"
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(pid), timeout=30)
        assert run.read_status().state == "running", "the worker had no time to write its end"
        status = jobs.refresh(run)
        assert status.state == "failed" and "ended without saying why" in status.error
        assert len(run.read_metrics()) >= 1
    finally:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _cli_state(settings, *arguments) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "core", "runs", *arguments, "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={**os.environ, "CELLSEG_DATA": str(settings.data_root)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_the_command_line_reports_a_killed_worker_as_failed(dataset):  # noqa: F811 - fixture
    """``runs show`` and ``runs list`` apply the same liveness rule as the pages: no page needs to look first."""
    run = tiny_run(dataset, epochs=200)
    process = launch(run, dataset)
    try:
        wait_for(lambda: len(run.read_metrics()) >= 1)
        assert _cli_state(dataset, "show", run.run_id)["status"] == "running"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        assert run.read_status().state == "running", "nothing in this process has looked at the run since"
        shown = _cli_state(dataset, "show", run.run_id)
        assert shown["status"] == "failed" and "ended without saying why" in shown["error"]
        listed = {row["id"]: row for row in _cli_state(dataset, "list")["runs"]}
        assert listed[run.run_id]["status"] == "failed"
    finally:
        process.kill()
        process.wait(timeout=30)


# --- a full disk during a mask save ----------------------------------------------------------------------


@pytest.fixture
def cells(tmp_path, settings):
    result = import_dataset(make_dsb(tmp_path / "src", n=3), ImportOptions(name="cells"), settings)
    return result.path, read_manifest(result.path)["images"][0]


def _full_disk_at(monkeypatch, predicate) -> list:
    """Make the atomic write raise ENOSPC for the paths that ``predicate`` accepts; returns the refused paths."""
    import core.io

    real, refused = core.io.write_bytes_atomic, []

    def write(path, payload):
        if predicate(path):
            refused.append(path)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, payload)

    monkeypatch.setattr(core.io, "write_bytes_atomic", write)
    monkeypatch.setattr("core.masks.versions.write_bytes_atomic", write)
    return refused


def _edit(folder, row) -> MaskState:
    binary = read_image(folder / row["mask"]).copy()
    binary[:5, :5] = 255 - binary[:5, :5]
    return MaskState(binary, read_image(folder / row["instances"]))


def _check_untouched(folder, row, mask_before: bytes, raised) -> None:
    assert "No space left on device" in str(raised.value) and "previous version is unchanged" in str(raised.value)
    assert (folder / row["mask"]).read_bytes() == mask_before, "the live mask is the previous one"
    assert read_log(folder, row["stem"]) == [], "no edit is logged"
    leftovers = [p for p in folder.rglob("*.tmp")]
    assert not leftovers, leftovers


def test_disk_full_at_the_first_write_of_a_save(cells, monkeypatch):
    folder, row = cells
    before = (folder / row["mask"]).read_bytes()
    refused = _full_disk_at(monkeypatch, lambda path: True)
    with pytest.raises(MaskSaveError) as raised:
        save_mask(folder, row, _edit(folder, row), 0, tool="paint")
    assert refused
    _check_untouched(folder, row, before, raised)
    assert current_version(folder, row["stem"]) == 0
    monkeypatch.undo()
    assert save_mask(folder, row, _edit(folder, row), 0, tool="paint").version == 1, "a retry works"


@pytest.mark.parametrize("stage", ["instances", "mask"])
def test_disk_full_after_the_history_copy_leaves_no_phantom_version(cells, monkeypatch, stage):
    folder, row = cells
    before = (folder / row["mask"]).read_bytes()
    live = folder / row[stage]
    refused = _full_disk_at(monkeypatch, lambda path: path == live)
    with pytest.raises(MaskSaveError) as raised:
        save_mask(folder, row, _edit(folder, row), 0, tool="paint")
    assert refused == [live]
    _check_untouched(folder, row, before, raised)
    monkeypatch.undo()
    try:
        saved = save_mask(folder, row, _edit(folder, row), 0, tool="paint")  # the same tab tries again
    except MaskChanged as exc:
        pytest.fail(f"retry after freeing space refused: {exc}; current_version={current_version(folder, row['stem'])}")
    assert saved.version == 1 and current_version(folder, row["stem"]) == 1
    assert len(read_log(folder, row["stem"])) == 1
