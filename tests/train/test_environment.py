"""The *auto* precision decision: the 15 % rule on known step times, and the per-machine record (measured once,
reused, measured again for another CPU or TensorFlow version). The probe's child process is replaced by fixed
times: no TensorFlow runs here and nothing depends on the clock."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import pytest

from core.train import environment
from core.train.environment import (
    BFLOAT16_MARGIN,
    PROBE_FILE,
    auto_precision_note,
    bfloat16_wins,
    machine_cache_dir,
    precision_probe,
    record_paths,
    remembered_precision,
    summarise_probe,
)


@pytest.mark.parametrize(
    ("float32_s", "bfloat16_s", "expected"),
    [
        (1.0, 0.5, True),  # 2× faster (AMX)
        (1.15, 1.0, True),  # exactly 15 % faster: enough
        (1.149, 1.0, False),  # just under 15 %
        (1.10, 1.0, False),  # 10 % faster: within the noise of a busy CPU, not worth a less precise training
        (1.0, 1.0, False),
        (0.9, 1.0, False),  # slower (AVX-512 BF16 without AMX)
        (0.050, 0.043, True),  # 16 % faster
        (1.0, 0.0, False),  # no bfloat16 time: never chosen
    ],
)
def test_bfloat16_needs_to_be_15_percent_faster(float32_s, bfloat16_s, expected):
    assert bfloat16_wins(float32_s, bfloat16_s) is expected


@pytest.mark.parametrize(
    ("float32_steps", "bfloat16_steps", "decision", "ratio"),
    [
        ([1.0] * 8, [0.5] * 8, "bfloat16", 2.0),
        ([1.0] * 8, [0.9] * 8, "float32", 1.111),
        ([0.8] * 8, [1.0] * 8, "float32", 0.8),
        # one slow step each (another process woke up): the medians ignore it
        ([1.0] * 7 + [9.0], [0.8] * 7 + [0.1], "bfloat16", 1.25),
        ([1.0] * 7 + [0.1], [0.9] * 7 + [20.0], "float32", 1.111),
    ],
)
def test_the_decision_compares_median_steps(float32_steps, bfloat16_steps, decision, ratio):
    summary = summarise_probe(float32_steps, bfloat16_steps)
    assert summary["decision"] == decision and summary["bfloat16_faster"] is (decision == "bfloat16")
    assert summary["speed_ratio"] == pytest.approx(ratio, abs=1e-3)
    assert summary["margin"] == BFLOAT16_MARGIN
    assert summary["float32_steps"] == float32_steps and summary["bfloat16_steps"] == bfloat16_steps


class FakeProbe:
    """Stands in for the child process: counts the measurements and returns fixed step times."""

    def __init__(self, float32_s: float = 1.0, bfloat16_s: float = 0.9) -> None:
        self.calls = 0
        self.result = {"bfloat16_usable": True, "float32_steps": [float32_s] * 8, "bfloat16_steps": [bfloat16_s] * 8}

    def __call__(self) -> dict:
        self.calls += 1
        return dict(self.result)


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """A CPU with bfloat16 instructions, a per-machine cache in the test's folder, and a fake probe."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(environment, "cpu_supports_bfloat16", lambda: True)
    identity = {"cpu": "Test CPU [avx512_bf16]", "tensorflow": "2.21.0"}
    monkeypatch.setattr(environment, "cpu_model", lambda cpuinfo=None: identity["cpu"])
    monkeypatch.setattr(environment, "tensorflow_version", lambda: identity["tensorflow"])
    probe = FakeProbe()
    monkeypatch.setattr(environment, "_run_probe", probe)
    return identity, probe, tmp_path / "xdg" / "cellseg" / PROBE_FILE


def test_the_decision_is_measured_once_and_remembered_per_machine(machine, tmp_path):
    identity, probe, record_file = machine
    assert remembered_precision(tmp_path / "data-a" / "cache") is None  # not measured yet
    first = precision_probe(tmp_path / "data-a" / "cache")
    assert probe.calls == 1 and first["decision"] == "float32" and not first["bfloat16_faster"]
    assert first["record_file"] == str(record_file)
    # another data root on the same machine reuses it: the decision belongs to the machine
    again = precision_probe(tmp_path / "data-b" / "cache")
    assert probe.calls == 1 and again["decision"] == "float32"
    assert not (tmp_path / "data-a" / "cache").exists() and not (tmp_path / "data-b" / "cache").exists()
    saved = json.loads(record_file.read_text())["machines"]["Test CPU [avx512_bf16] · TensorFlow 2.21.0"]
    assert saved["float32_s"] == 1.0 and saved["bfloat16_s"] == 0.9 and saved["speed_ratio"] == pytest.approx(1.111)
    assert saved["margin"] == BFLOAT16_MARGIN and saved["decision"] == "float32"
    assert saved["cpu"] == identity["cpu"] and saved["tensorflow"] == "2.21.0"
    assert saved["measured"][:2] == "20" and "T" in saved["measured"] and len(saved["float32_steps"]) == 8
    assert remembered_precision()["decision"] == "float32"


@pytest.mark.parametrize(("changed", "value"), [("cpu", "Other CPU [amx_bf16]"), ("tensorflow", "2.22.0")])
def test_another_cpu_or_tensorflow_version_is_measured_again(machine, changed, value):
    identity, probe, record_file = machine
    assert precision_probe()["decision"] == "float32" and probe.calls == 1
    before = identity[changed]
    identity[changed] = value
    probe.result.update(bfloat16_steps=[0.4] * 8)  # this machine gains 2.5×
    assert remembered_precision() is None
    assert precision_probe()["decision"] == "bfloat16" and probe.calls == 2
    assert precision_probe()["decision"] == "bfloat16" and probe.calls == 2  # remembered too
    identity[changed] = before  # both machines share the file (e.g. a home folder shared by a cluster's nodes)
    assert precision_probe()["decision"] == "float32" and probe.calls == 2
    assert len(json.loads(record_file.read_text())["machines"]) == 2


def test_a_record_of_the_old_short_probe_is_not_reused(machine, tmp_path):
    _, probe, record_file = machine
    old = tmp_path / "data" / "cache" / "precision-probe-v2.json"
    old.parent.mkdir(parents=True)
    old.write_text(
        json.dumps({"bfloat16_usable": True, "bfloat16_faster": True, "float32_s": 0.05, "bfloat16_s": 0.043})
    )
    assert precision_probe(tmp_path / "data" / "cache")["decision"] == "float32" and probe.calls == 1


def test_a_damaged_record_is_measured_again_and_said_so(machine, caplog):
    _, probe, record_file = machine
    record_file.parent.mkdir(parents=True)
    record_file.write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="core.train.environment"):
        assert precision_probe()["decision"] == "float32"
    assert probe.calls == 1 and str(record_file) in caplog.text
    assert json.loads(record_file.read_text())["version"] == 3


def test_without_a_writable_machine_cache_the_data_roots_cache_keeps_it(machine, tmp_path, monkeypatch, caplog):
    _, probe, _ = machine
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    cache = tmp_path / "data" / "cache"
    with caplog.at_level(logging.WARNING, logger="core.train.environment"):
        assert precision_probe(cache)["record_file"] == str(cache / PROBE_FILE)
    assert "cannot be saved" in caplog.text
    assert precision_probe(cache)["decision"] == "float32" and probe.calls == 1
    assert remembered_precision(cache)["record_file"] == str(cache / PROBE_FILE)


def test_a_crashing_probe_means_float32_and_is_remembered(machine):
    _, probe, _ = machine
    probe.result = {"bfloat16_usable": False, "reason": "the probe crashed (SIGILL)"}
    found = precision_probe()
    assert found["decision"] == "float32" and not found["bfloat16_usable"] and not found["bfloat16_faster"]
    assert precision_probe()["reason"] == "the probe crashed (SIGILL)" and probe.calls == 1
    assert "bfloat16 is not used here: the probe crashed (SIGILL)" in auto_precision_note(remembered_precision())


def test_a_cpu_without_bfloat16_instructions_is_not_measured(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(environment, "cpu_supports_bfloat16", lambda: False)
    monkeypatch.setattr(environment, "_run_probe", lambda: pytest.fail("no probe on a CPU without bfloat16"))
    found = remembered_precision()
    assert found["decision"] == "float32" and found["reason"] == "no bfloat16 instructions"
    assert not precision_probe()["bfloat16_faster"]
    assert not list(tmp_path.iterdir())  # nothing to remember


def test_the_child_reports_both_precisions_step_by_step(monkeypatch, capsys):
    monkeypatch.setattr(environment, "_probe_step_times", lambda: {"float32": [1.0, 1.1], "mixed_bfloat16": [0.5, 0.6]})
    environment.probe_report()
    assert json.loads(capsys.readouterr().out) == {"float32_steps": [1.0, 1.1], "bfloat16_steps": [0.5, 0.6]}


@pytest.mark.parametrize(
    ("returncode", "stdout", "expected"),
    [
        (
            0,
            'warming up\n{"float32_steps": [1.0], "bfloat16_steps": [0.5]}\n',
            {"bfloat16_usable": True, "float32_steps": [1.0], "bfloat16_steps": [0.5]},
        ),
        (-4, "", {"bfloat16_usable": False, "reason": "the probe crashed (SIGILL)"}),
        (1, "", {"bfloat16_usable": False, "reason": "the probe failed (exit 1)"}),
        (0, "", {"bfloat16_usable": False, "reason": "the probe printed no result"}),
        (0, '{"float32_s": 0.05}', {"bfloat16_usable": False, "reason": "the probe printed no result"}),  # a v2 child
    ],
)
def test_the_child_process_outcomes(monkeypatch, returncode, stdout, expected):
    monkeypatch.setattr(
        environment.subprocess,
        "run",
        lambda *args, **kwargs: subprocess.CompletedProcess(args, returncode, stdout, "stderr"),
    )
    assert environment._run_probe() == expected


def test_a_child_that_runs_too_long_means_float32(monkeypatch):
    def slow(*args, **kwargs):
        raise subprocess.TimeoutExpired(args, 300)

    monkeypatch.setattr(environment.subprocess, "run", slow)
    assert environment._run_probe() == {"bfloat16_usable": False, "reason": "the probe took over 5 minutes"}


def test_the_machine_cache_follows_xdg_and_comes_before_the_data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert machine_cache_dir() == tmp_path / "xdg" / "cellseg"
    assert record_paths(tmp_path / "cache") == [
        tmp_path / "xdg" / "cellseg" / PROBE_FILE,
        tmp_path / "cache" / PROBE_FILE,
    ]
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert machine_cache_dir() == Path(tmp_path / "home" / ".cache" / "cellseg")


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (None, "auto: measured at the first training on this machine"),
        (
            {
                "decision": "float32",
                "bfloat16_usable": True,
                "speed_ratio": 0.9,
                "margin": 0.15,
                "measured": "2026-12-02T10:00:00+00:00",
            },
            "auto on this machine: float32 (bfloat16 measured 0.90× the speed of float32 on 2026-12-02; "
            "it needs 1.15×).",
        ),
        (
            {
                "decision": "bfloat16",
                "bfloat16_usable": True,
                "speed_ratio": 2.75,
                "margin": 0.15,
                "measured": "2026-12-02T10:00:00+00:00",
            },
            "auto on this machine: bfloat16 (measured 2.75× the speed of float32 on 2026-12-02).",
        ),
    ],
)
def test_the_train_page_sentence(record, expected):
    assert auto_precision_note(record).startswith(expected)


def test_the_cpu_model_names_the_bfloat16_instructions():
    info = (
        "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\nflags\t\t: fpu avx512f amx_bf16 avx512_bf16\n"
    )
    assert environment.cpu_model(info) == "Intel(R) Xeon(R) Platinum 8480+ [avx512_bf16 amx_bf16]"
    assert environment.cpu_model("model name : AMD EPYC\nflags : fpu avx2\n") == "AMD EPYC"
