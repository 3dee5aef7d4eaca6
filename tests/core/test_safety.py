"""No user input is ever run as code: no eval/exec/pickle anywhere in the program, and config files are read as
literals only (a value that is code is refused, never executed)."""

import ast
from pathlib import Path

import pytest

from core.augment.seed_ini import import_seed_config
from tests.helpers import REPO

FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}
FORBIDDEN_MODULES = {"pickle", "cPickle", "marshal", "shelve", "dill"}


def _program_files() -> list[Path]:
    return sorted(p for folder in ("core", "dashboard", "pages") for p in (REPO / folder).rglob("*.py"))


@pytest.mark.parametrize("path", _program_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_code_execution_or_pickle_in_the_program(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in FORBIDDEN_CALLS, f"{path.name}:{node.lineno} calls {node.func.id}()"
        if isinstance(node, ast.Import):
            assert not {a.name.split(".")[0] for a in node.names} & FORBIDDEN_MODULES, f"{path.name}:{node.lineno}"
        if isinstance(node, ast.ImportFrom):
            assert (node.module or "").split(".")[0] not in FORBIDDEN_MODULES, f"{path.name}:{node.lineno}"


def test_a_config_value_that_is_code_is_refused_not_run(tmp_path):
    marker = tmp_path / "was-run"
    text = f"[augmentor]\nrotation = __import__('pathlib').Path({str(marker)!r}).touch()\n"
    result = import_seed_config(text, "evil.config")
    assert not marker.exists()
    assert any(line.severity == "error" and line.key == "rotation" for line in result.report)
