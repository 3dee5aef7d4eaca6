"""The dashboard server never imports TensorFlow: every model runs in a worker process."""

import subprocess
import sys

from tests.helpers import REPO

SCRIPT = """
import importlib, pathlib, sys
for path in sorted(pathlib.Path("dashboard").glob("*.py")):
    if path.stem not in ("app", "serve"):  # these two start the server when imported
        importlib.import_module("dashboard." + path.stem)
for path in sorted(pathlib.Path("pages").glob("*.py")):
    compile(path.read_text(), str(path), "exec")
print(sorted(name for name in ("tensorflow", "keras") if name in sys.modules))
"""


def test_no_dashboard_module_pulls_in_tensorflow():
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
