"""The dashboard server never imports TensorFlow: every model runs in a worker process. The engine never imports
the user interface (import-linter checks it too, see pyproject.toml; this test keeps the rule beside the runtime
check)."""

import ast
import subprocess
import sys

import pytest

from tests.helpers import REPO

SCRIPT = """
import importlib, pathlib, sys
for path in sorted(pathlib.Path("dashboard").rglob("*.py")):
    if path.stem not in ("app", "serve"):  # these two start the server when imported
        importlib.import_module(".".join(path.with_suffix("").parts).removesuffix(".__init__"))
for path in sorted(pathlib.Path("pages").glob("*.py")):
    compile(path.read_text(), str(path), "exec")
print(sorted(name for name in ("tensorflow", "keras") if name in sys.modules))
"""


def test_no_dashboard_module_pulls_in_tensorflow():
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


def forbidden_imports(source: str, forbidden: tuple[str, ...]) -> list[str]:
    """The modules among ``forbidden`` (or inside them) that ``source`` imports by name, anywhere in its code."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return sorted({name for name in names if any(name == f or name.startswith(f + ".") for f in forbidden)})


@pytest.mark.parametrize(
    "source, found",
    [
        ("import tensorflow as tf", ["tensorflow"]),
        ("from tensorflow import keras", ["tensorflow"]),
        ("def build():\n    import keras.layers", ["keras.layers"]),
        ("import numpy, keras", ["keras"]),
        ("import tensorflowjs\nfrom kerastuner import x\nfrom . import keras", []),  # other names; a relative import
    ],
)
def test_forbidden_imports_finds_direct_imports_at_any_depth(source, found):
    assert forbidden_imports(source, ("tensorflow", "keras")) == found


@pytest.mark.parametrize(
    "pattern, forbidden",
    [
        ("pages/*.py", ("tensorflow", "keras")),  # a page runs in the server: models run in workers
        ("dashboard/**/*.py", ("tensorflow", "keras")),
        ("core/**/*.py", ("streamlit", "streamlit_drawable_canvas", "dashboard")),  # the engine runs without the UI
    ],
    ids=["pages-without-tensorflow", "dashboard-without-tensorflow", "core-without-streamlit"],
)
def test_no_file_imports_what_its_layer_must_not(pattern, forbidden):
    files = sorted(REPO.glob(pattern))
    assert files, f"no file matches {pattern}"
    offenders = {
        str(path.relative_to(REPO)): names
        for path in files
        if (names := forbidden_imports(path.read_text(encoding="utf-8"), forbidden))
    }
    assert offenders == {}
