"""`python -m core runs list|show|compare`, in-process, on two evaluated runs (stand-in model, no TensorFlow)."""

from __future__ import annotations

import json
import re

import pytest

from core.catalogue import store
from core.cli import main
from core.evaluation import job as eval_job
from core.runs.folder import RunDir
from core.runs.notes import RunNotes, write_notes
from tests.core.test_run_compare import shifted_model
from tests.evaluation_helpers import evaluated_run, trained_run


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def two_runs(data_env, tmp_path, monkeypatch):
    """A (evaluated, tagged "baseline") and B (evaluated, 16 patches a batch, masks 2 pixels off)."""
    run_a = evaluated_run(data_env, tmp_path, monkeypatch)
    run_b = trained_run(data_env, tmp_path)
    config = json.loads(run_b.config_path.read_text())
    config["train"]["batch_size"] = 16
    run_b.config_path.write_text(json.dumps(config))
    monkeypatch.setattr(eval_job, "load_run_model", shifted_model)
    eval_job.evaluate_run(run_b, eval_job.dataset_items(data_env.datasets_dir / "cells", "test"), "test")
    for run_dir in (run_a, run_b):
        for epoch in (1, 2):
            run_dir.append_metrics({"epoch": epoch, "loss": 1 / epoch, "val_dice": 0.4 * epoch, "seconds": 3.0})
    write_notes(run_a, RunNotes(name="Baseline", notes="first go", tags=("baseline",)))
    return run_a.run_id, run_b.run_id


def test_list_json_is_one_object_with_the_runs(two_runs, capsys):
    a, b = two_runs
    code, out, _ = run(capsys, "runs", "list", "--json")
    listed = json.loads(out)
    assert code == 0 and listed["count"] == 2 and {r["id"] for r in listed["runs"]} == {a, b}
    row = next(r for r in listed["runs"] if r["id"] == a)
    assert {
        "id",
        "name",
        "status",
        "dataset",
        "tags",
        "best_val_dice",
        "test_dice",
        "batch_size",
        "learning_rate",
        "missing",
        "deleted",
    } <= set(row)
    assert row["name"] == "Baseline" and row["tags"] == ["baseline"] and row["test_dice"] > 0.8

    code, out, _ = run(capsys, "runs", "list", "--tag", "Baseline", "--json")
    assert [r["id"] for r in json.loads(out)["runs"]] == [a]
    code, out, _ = run(capsys, "runs", "list", "--search", "FIRST GO", "--status", "finished", "--json")
    assert [r["id"] for r in json.loads(out)["runs"]] == [a]
    assert json.loads(run(capsys, "runs", "list", "--dataset", "other", "--json")[1])["count"] == 0


def test_list_hides_deleted_runs_unless_all(two_runs, capsys, data_env):
    a, b = two_runs
    write_notes(RunDir(data_env.data_root / "runs" / b), RunNotes(deleted=True))
    assert [r["id"] for r in json.loads(run(capsys, "runs", "list", "--json")[1])["runs"]] == [a]
    assert json.loads(run(capsys, "runs", "list", "--all", "--json")[1])["count"] == 2
    code, out, _ = run(capsys, "runs", "list")
    assert code == 0 and a in out and "Baseline" in out and b not in out


def test_show_json_and_text(two_runs, capsys):
    a, _ = two_runs
    code, out, _ = run(capsys, "runs", "show", a, "--json")
    detail = json.loads(out)
    assert code == 0 and detail["id"] == a and detail["name"] == "Baseline"
    assert detail["evaluations"]["test"]["n_images"] == 4 and detail["params"]["batch_size"] == 2
    assert {"run_dir", "error", "created", "epochs", "params", "evaluations"} <= set(detail)
    code, out, _ = run(capsys, "runs", "show", a)
    assert code == 0 and "evaluation test" in out and "model.name" in out


def test_compare_json_html_and_csv(two_runs, capsys, tmp_path):
    a, b = two_runs
    report, table = tmp_path / "out" / "report.html", tmp_path / "runs.csv"
    report.parent.mkdir()
    code, out, _ = run(capsys, "runs", "compare", a, b, "--html", str(report), "--csv", str(table), "--json")
    result = json.loads(out)
    assert code == 0 and [r["id"] for r in result["runs"]] == [a, b]
    assert result["config_diff"] == {"batch_size": {a: "2", b: "16"}}
    paired = result["paired_difference"]
    assert paired["run_a"] == a and paired["run_b"] == b and paired["n"] == 4 and paired["split"] == "test"
    assert paired["low"] <= paired["mean_difference"] <= paired["high"] < 0
    assert paired["verdict"].startswith("A is better than B")
    page = report.read_text(encoding="utf-8")
    assert "<html" in page and a in page and b in page and "Baseline" in page
    assert not re.search(r"<script[^>]*\bsrc\s*=", page)
    assert table.read_text().splitlines()[0].startswith("id,name,status") and len(table.read_text().splitlines()) == 3


def test_compare_text(two_runs, capsys):
    a, b = two_runs
    code, out, _ = run(capsys, "runs", "compare", a, b)
    assert code == 0 and "Settings that differ" in out and "batch_size" in out
    assert f"A = {a}, B = {b}" in out and "% CI" in out and "A is better than B" in out


@pytest.mark.parametrize(
    ("trained", "row", "warned"),
    [
        ((None, None), None, False),  # neither run recorded a precision: no row, no warning
        (("float32", "float32"), ["float32", "float32"], False),
        (("float32", "bfloat16"), ["float32", "bfloat16"], True),
        (("bfloat16", None), ["bfloat16", "—"], False),  # one run recorded none: nothing to compare it with
    ],
    ids=["none", "same", "different", "one-unknown"],
)
def test_compare_shows_the_precision_each_run_trained_in(two_runs, capsys, data_env, tmp_path, trained, row, warned):
    a, b = two_runs
    for run_id, precision in zip((a, b), trained):
        if precision:
            RunDir(data_env.data_root / "runs" / run_id).update(precision=precision)
    note = (
        (
            f"These runs trained in different precisions: {a} float32, {b} bfloat16. Part of their difference may "
            "come from it: choose the same Precision (custom preset) to compare like with like."
        )
        if warned
        else None
    )
    report = tmp_path / "report.html"
    code, out, _ = run(capsys, "runs", "compare", a, b, "--html", str(report), "--json")
    result = json.loads(out)
    assert code == 0 and result["precision_used"] == {a: trained[0], b: trained[1]}
    assert result["config_diff"] == {"batch_size": {a: "2", b: "16"}}  # the settings alone, as before
    assert result["precision_note"] == note
    page = report.read_text(encoding="utf-8")
    cells = "<td>precision used</td>" + "".join(f"<td>{value}</td>" for value in row or ())
    assert (cells in page) == (row is not None)
    assert (f'<p class="warning">{note}</p>' in page) if warned else 'class="warning"' not in page

    code, out, _ = run(capsys, "runs", "compare", a, b)
    settings = out.split("Settings that differ:\n")[1].split("\n\n")[0].splitlines()  # run ids, "key", rows
    assert code == 0 and [line.split() for line in settings[2:]] == [
        ["batch_size", "2", "16"],
        *([["precision", "used", *row]] if row else []),
    ]
    assert (f"Warning: {note}" in out) if warned else "Warning" not in out


def test_compare_without_shared_evaluations_says_so(two_runs, capsys):
    a, b = two_runs
    code, out, _ = run(capsys, "runs", "compare", a, b, "--split", "valid", "--json")
    assert code == 0 and json.loads(out)["paired_difference"] is None
    assert "No paired comparison" in run(capsys, "runs", "compare", a, b, "--split", "valid")[1]


@pytest.mark.parametrize(
    "argv, message",
    [
        (("runs", "show", "nope"), "error: No run 'nope' in the catalogue."),
        (("runs", "compare", "A_PLACEHOLDER", "nope"), "error: No run 'nope' in the catalogue."),
        (("runs", "compare", "A_PLACEHOLDER"), "error: give at least two runs"),
    ],
)
def test_unknown_runs_exit_2_with_one_line(two_runs, capsys, argv, message):
    argv = [two_runs[0] if arg == "A_PLACEHOLDER" else arg for arg in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and err.startswith(message) and len(err.strip().splitlines()) == 1


def test_busy_catalogue_exits_3(data_env, capsys, monkeypatch):
    def busy(*args, **kwargs):
        raise store.CatalogueBusy("in use")

    monkeypatch.setattr(store, "connect", busy)
    code, out, err = run(capsys, "runs", "list")
    assert code == 3 and out == "" and "in use by the running dashboard" in err
    assert len(err.strip().splitlines()) == 1


def test_empty_data_root_lists_nothing(data_env, capsys):
    code, out, _ = run(capsys, "runs", "list")
    assert code == 0 and out.startswith("No runs found")
    assert json.loads(run(capsys, "runs", "list", "--json")[1]) == {"count": 0, "runs": []}
