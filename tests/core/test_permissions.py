"""The role matrix: every action that changes something, tried as every role, in the engine and on the command line.

An allowed call may still fail for its own reasons (the inputs here are deliberately small or missing, so that
nothing trains): what is asserted is that the permission check let it through, or refused it with a message that
names the role needed, before anything was written.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core import cli, jobs
from core.accounts import acting
from core.accounts.manage import Operator, add_user, shell_operator
from core.accounts.roles import ACTIONS, ROLES, PermissionDenied, Role, least_role
from core.accounts.users import AccountStore
from core.augment.config import AugmentConfig
from core.config import ImportOptions
from core.datasets.importer import import_dataset
from core.jobs import JobDir
from core.masks.undo import MaskState
from core.postprocess import PostProcessing
from core.runs.folder import RunDir, create_run
from core.runs.notes import RunNotes
from core.train.config import TrainConfig
from tests.helpers import make_flat, tree_fingerprint

PASSWORD = "a-long-enough-password"


def _run(settings) -> RunDir:
    return create_run(settings.data_root / "runs", {"train": TrainConfig(dataset="cells").to_dict()}, "unet")


def _job(settings, owner: str) -> JobDir:
    job = JobDir(settings.data_root / "jobs" / f"job-of-{owner}")
    job.update(state="running", kind="predict", executor="local", owner=owner, pid=1)
    return job


class _AlwaysCancels:
    def cancel(self, status) -> bool:
        return True


@pytest.fixture
def stoppable(monkeypatch):
    """Stopping a job without a real worker: the executor 'cancels' and the job stays active until then."""
    monkeypatch.setattr("core.jobs.control.refresh", lambda job, settings=None: job.read_status())
    monkeypatch.setattr("core.jobs.control.executor_named", lambda name, settings=None: _AlwaysCancels())


def _import_tiny(settings, tmp_path: Path, name: str = "cells") -> None:
    with acting.acting_as(shell_operator()):
        import_dataset(make_flat(tmp_path / f"src-{name}", n=6, size=32), ImportOptions(name=name), settings)


# What each action's engine entry is called with. Missing datasets, runs and files make allowed calls stop
# right after the check; the few that succeed (a preset, notes, a review) write a few bytes.
def _inputs(settings, actor_name: str) -> dict:
    """What some calls act on, made before the call (and before the test takes its fingerprint)."""
    with acting.acting_as(shell_operator()):
        return {
            "run": _run(settings),
            "my job": _job(settings, actor_name),
            "their job": _job(settings, "somebody-else"),
        }


def _call(action: str, settings, tmp_path: Path, inputs: dict) -> None:
    from core.augment.presets import save_preset
    from core.datasets.adding import add_images
    from core.datasets.manage import delete_dataset, rename_dataset, set_pixel_size
    from core.evaluation.job import evaluate_run
    from core.export_model import export_run
    from core.interop.export import export_cells
    from core.interop.model_zoo.importing import import_package
    from core.masks.versions import save_mask, set_reviewed
    from core.models.generalist import build_generalist
    from core.prediction.job import predict_files
    from core.proposals.job import propose_dataset
    from core.runs.model import save_inference_settings
    from core.runs.notes import write_notes
    from core.train.runs import prepare_run

    missing = tmp_path / "missing"
    calls = {
        "cells.export": lambda: export_cells([], "csv", tmp_path / "cells-out"),
        "mask.save": lambda: save_mask(
            missing, {"stem": "a", "mask": "a.png"}, MaskState(np.zeros((4, 4), np.uint8)), 0, tool="paint"
        ),
        "mask.review": lambda: set_reviewed(missing, "a", True),
        "propose": lambda: propose_dataset(settings, "no-such-dataset", "generalist", JobDir(tmp_path / "p")),
        "dataset.import": lambda: import_dataset(missing, ImportOptions(name="new"), settings),
        "dataset.add_images": lambda: add_images(settings, "no-such-dataset", missing),
        "dataset.set_pixel_size": lambda: set_pixel_size(settings, "no-such-dataset", 0.5),
        "augment.save_preset": lambda: save_preset(settings.data_root, "mine", AugmentConfig()),
        "train.launch": lambda: prepare_run(settings, TrainConfig(dataset="no-such-dataset")),
        "train.stop": lambda: jobs.stop(inputs["my job"], settings),
        "train.stop_other": lambda: jobs.stop(inputs["their job"], settings),
        "evaluate": lambda: evaluate_run(RunDir(missing), [], "test"),
        "predict": lambda: predict_files(RunDir(missing), [], tmp_path / "pred"),
        "export": lambda: export_run(RunDir(missing), tmp_path / "export"),
        "model.import": lambda: import_package(settings, missing),
        "run.edit_notes": lambda: write_notes(inputs["run"], RunNotes(name="renamed")),
        "run.save_inference_settings": lambda: save_inference_settings(inputs["run"], PostProcessing()),
        "cluster.probe": lambda: _probe(settings),
        "dataset.rename": lambda: rename_dataset(settings, "no-such-dataset", "other"),
        "dataset.delete": lambda: delete_dataset(settings, "no-such-dataset"),
        "run.delete": lambda: write_notes(inputs["run"], RunNotes(deleted=True)),
        "model.train_generalist": lambda: build_generalist(
            missing, tmp_path / "g", tmp_path / "w", leave_out=("no-such-source",)
        ),
        "users.manage": lambda: add_user(
            AccountStore.for_settings(settings), acting.current().actor, "newcomer", "viewer", PASSWORD
        ),
        "audit.read": lambda: _read_audit(settings),
    }
    assert set(calls) == set(ACTIONS), "every action of the permission table is tried"
    calls[action]()


def _probe(settings):
    from core.jobs import slurm

    def no_cluster(_settings):
        raise jobs.ExecutorUnavailable("no cluster in this test")

    original = slurm.SlurmExecutor.from_settings
    slurm.SlurmExecutor.from_settings = staticmethod(no_cluster)
    try:
        return slurm.probe(settings)
    finally:
        slurm.SlurmExecutor.from_settings = original


def _read_audit(settings):
    from core.accounts.audit import read_audit

    return read_audit(settings.data_root)


MATRIX = [(action, role) for action in ACTIONS for role in ROLES]


@pytest.mark.parametrize("action, role", MATRIX, ids=[f"{a}-as-{r}" for a, r in MATRIX])
def test_engine_role_matrix(action, role, settings, tmp_path, stoppable):
    actor = Operator(f"{role}-person", Role(role))
    allowed = Role(role) >= least_role(action)
    inputs = _inputs(settings, actor.name)
    before = tree_fingerprint(settings.data_root)
    with acting.acting_as(actor, settings.data_root, "test"):
        try:
            _call(action, settings, tmp_path, inputs)
        except PermissionDenied as refusal:
            assert not allowed, f"{role} was refused {action}: {refusal}"
            assert refusal.needed == least_role(action) and str(least_role(action)) in str(refusal)
            after = tree_fingerprint(settings.data_root)
            changed = {
                path
                for path in set(after) | set(before)
                if not path.startswith("audit/") and after.get(path) != before.get(path)
            }
            assert not changed, f"a refused {action} changed {changed}"
            [line] = (settings.data_root / "audit" / "audit.jsonl").read_text().splitlines()
            recorded = "users.add" if action == "users.manage" else action  # account changes log their own verb
            assert json.loads(line) | {"time": None} == json.loads(line) | {
                "time": None,
                "user": actor.name,
                "action": recorded,
                "outcome": "refused",
            }
            return
        except Exception:  # noqa: BLE001 — allowed, then stopped by the missing inputs: the check let it through
            pass
    assert allowed, f"{role} was allowed {action}"


@pytest.mark.parametrize(
    "owner_is_me, role, allowed",
    [
        (True, "trainer", True),
        (True, "annotator", False),
        (False, "trainer", False),
        (False, "admin", True),
    ],
)
def test_a_trainer_stops_only_their_own_jobs(owner_is_me, role, allowed, settings, stoppable):
    job = _job(settings, "ana" if owner_is_me else "bo")
    with acting.acting_as(Operator("ana", Role(role))):
        if allowed:
            assert jobs.stop(job, settings) and job.read_status().stop_requested
        else:
            with pytest.raises(PermissionDenied):
                jobs.stop(job, settings)
            assert job.read_status().stop_requested is None


def test_disabled_account_may_do_nothing(settings):
    with (
        acting.acting_as(Operator("gone", Role.ADMIN, disabled=True)),
        pytest.raises(PermissionDenied, match="disabled"),
    ):
        _call("cells.export", settings, settings.data_root, {})


def test_owner_and_saver_are_recorded(settings, tmp_path):
    """Who launched a run, imported a dataset and saved a mask version is on disk and in the catalogue."""
    from core.catalogue import store
    from core.catalogue.datasets import mask_history, sync_datasets
    from core.catalogue.runs import sync_runs
    from core.datasets.manifest import read_manifest
    from core.masks.versions import read_log, save_mask
    from core.runs.queries import query_runs
    from core.train.runs import prepare_run

    with acting.acting_as(Operator("ana", Role.TRAINER)):
        import_dataset(make_flat(tmp_path / "src", n=6, size=32), ImportOptions(name="cells"), settings)
        run = prepare_run(settings, TrainConfig(dataset="cells"))
        folder = settings.datasets_dir / "cells"
        row = read_manifest(folder)["images"][0]
        save_mask(folder, row, MaskState(np.zeros((32, 32), np.uint8)), 0, tool="clear")
    assert read_manifest(folder)["imported_by"] == "ana"
    assert run.read_config()["owner"] == "ana" and run.read_status().owner == "ana"
    assert read_log(folder, row["stem"])[-1]["user"] == "ana"
    con = store.connect(settings.catalogue_path)
    sync_datasets(con, settings.datasets_dir)
    sync_runs(con, settings.data_root / "runs")
    assert query_runs(con)["owner"].tolist() == ["ana"]
    assert mask_history(con, "cells", row["stem"])["saved_by"].tolist() == ["ana"]
    assert con.execute("SELECT imported_by FROM datasets").fetchall() == [("ana",)]


def test_conflict_names_the_other_person(settings, tmp_path):
    from core.datasets.manifest import read_manifest
    from core.masks.versions import MaskChanged, save_mask

    _import_tiny(settings, tmp_path)
    folder = settings.datasets_dir / "cells"
    row = read_manifest(folder)["images"][0]
    state = MaskState(np.zeros((32, 32), np.uint8))
    with acting.acting_as(Operator("bo", Role.ANNOTATOR)):
        save_mask(folder, row, state, 0, tool="paint")
    with acting.acting_as(Operator("ana", Role.ANNOTATOR)), pytest.raises(MaskChanged, match=r"saved by bo at"):
        save_mask(folder, row, state, 0, tool="paint")


def test_a_job_worker_acts_for_its_owner_as_the_account_stands_now(settings):
    from core.accounts.manage import owner_actor

    store = AccountStore.for_settings(settings)
    add_user(store, shell_operator(), "ana", "trainer", PASSWORD)
    assert owner_actor(store, "ana").role == Role.TRAINER
    store.set_role("ana", "viewer")
    assert owner_actor(store, "ana").role == Role.VIEWER, "a role taken away since the job was queued counts"
    assert owner_actor(store, "gone").disabled, "a deleted account may do nothing"
    assert owner_actor(store, "(local)").role == Role.ADMIN and owner_actor(store, None).name.startswith("shell:")


# ------------------------------------------------------------------------------------------ the command line


@pytest.fixture
def lab(data_env, tmp_path):
    """A data root with one account per role, a tiny dataset and a run folder (never trained)."""
    store = AccountStore.for_settings(data_env)
    for role in ROLES:
        add_user(store, shell_operator(), f"{role}1", role, PASSWORD)
    _import_tiny(data_env, tmp_path)
    with acting.acting_as(shell_operator()):
        run = _run(data_env)
    return data_env, run


def _commands(settings, run: RunDir, tmp_path: Path) -> dict[str, list[str]]:
    missing = str(tmp_path / "missing")
    return {
        "datasets import": ["datasets", "import", missing, "--name", "new"],
        "datasets add": ["datasets", "add", "cells", missing],
        "datasets pixel-size": ["datasets", "pixel-size", "cells", "0.5"],
        "datasets rename": ["datasets", "rename", "no-such-dataset", "other"],
        "datasets delete": ["datasets", "delete", "no-such-dataset", "--yes"],
        "train": ["train", "--dataset", "no-such-dataset"],
        "evaluate": ["evaluate", run.run_id, "--dataset", "cells"],
        "predict": ["predict", run.run_id, missing, "--out", str(tmp_path / "pred")],
        "export": ["export", run.run_id, "--out", str(tmp_path / "export")],
        "export-cells": ["export-cells", missing, "--format", "csv", "--out", str(tmp_path / "cells")],
        "tracks export": ["tracks", "export", "no-such-dataset", "--out", str(tmp_path / "tracks")],
        "propose": ["propose", "no-such-dataset"],
        "models import": ["models", "import", missing],
        "models train-generalist": ["models", "train-generalist", "--leave-out", "no-such-source"],
        "jobs probe": ["jobs", "probe"],
        "users list": ["users", "list"],
        "users audit": ["users", "audit"],
        "users disable": ["users", "disable", "no-such-user"],
    }


CLI_NEEDS = {
    "datasets import": "dataset.import",
    "datasets add": "dataset.add_images",
    "datasets pixel-size": "dataset.set_pixel_size",
    "datasets rename": "dataset.rename",
    "datasets delete": "dataset.delete",
    "train": "train.launch",
    "evaluate": "evaluate",
    "predict": "predict",
    "export": "export",
    "export-cells": "cells.export",
    "tracks export": "cells.export",
    "propose": "propose",
    "models import": "model.import",
    "models train-generalist": "model.train_generalist",
    "jobs probe": "cluster.probe",
    "users list": "users.manage",
    "users audit": "audit.read",
    "users disable": "users.manage",
}
CLI_MATRIX = [(command, role) for command in CLI_NEEDS for role in ROLES]


@pytest.mark.parametrize("command, role", CLI_MATRIX, ids=[f"{c}-as-{r}" for c, r in CLI_MATRIX])
def test_command_line_role_matrix(command, role, lab, tmp_path, monkeypatch, capsys):
    settings, run = lab
    monkeypatch.setenv(cli.USER_PASSWORD_ENV, PASSWORD)
    monkeypatch.setattr("core.jobs.slurm.SlurmExecutor.from_settings", _no_cluster)
    code = cli.main(["--as", f"{role}1", *_commands(settings, run, tmp_path)[command]])
    err = capsys.readouterr().err
    needed = least_role(CLI_NEEDS[command])
    if Role(role) >= needed:
        assert "may not" not in err, err
    else:
        assert code == 2 and f"{role}1 (role {role}) may not {CLI_NEEDS[command]}" in err, err
        assert f"needs the role {needed}" in err


def _no_cluster(_settings):
    raise jobs.ExecutorUnavailable("no cluster in this test")


def test_command_line_refuses_a_wrong_password_before_doing_anything(lab, monkeypatch, capsys):
    settings, _run_dir = lab
    monkeypatch.setenv(cli.USER_PASSWORD_ENV, "not the password")
    assert cli.main(["--as", "admin1", "datasets", "delete", "cells", "--yes"]) == 2
    assert "Wrong user name or password." in capsys.readouterr().err
    assert (settings.datasets_dir / "cells").is_dir(), "nothing was done"


def test_without_as_the_shell_acts_as_the_servers_administrator(lab, capsys):
    assert cli.main(["users", "list"]) == 0
    assert "viewer1" in capsys.readouterr().out


def test_command_line_logs_the_work_it_did_once(lab, monkeypatch):
    """A command whose work the engine does not log itself (here an export) is logged by the command line,
    once, and only when it succeeded; a rename logs itself, not twice."""
    from core.accounts.audit import AuditFilter, read_audit
    from core.cli import evaluate_cli

    settings, run = lab
    monkeypatch.setattr(evaluate_cli, "cmd_export", lambda args: 0)
    assert cli.main(["export", run.run_id, "--out", "somewhere"]) == 0
    monkeypatch.setattr(evaluate_cli, "cmd_export", lambda args: 1)
    assert cli.main(["export", run.run_id, "--out", "elsewhere"]) == 1
    [line] = read_audit(settings.data_root, AuditFilter(action="export"))
    assert line.user.startswith("shell:") and "somewhere" in line.details["arguments"]
    assert cli.main(["datasets", "rename", "cells", "renamed"]) == 0
    assert [r.target for r in read_audit(settings.data_root, AuditFilter(action="dataset.rename"))] == ["cells"]
