"""The command line: `python -m core datasets …` with JSON output and meaningful exit codes."""

import json
import os
import subprocess
import sys

import pytest

from core.catalogue import store
from core.cli import main
from tests.helpers import REPO, make_flat, make_splits


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_import_list_check_rename_delete(tmp_path, data_env, capsys):
    source = make_splits(tmp_path / "src")
    code, out, err = run(capsys, "datasets", "import", str(source), "--name", "cells", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["imported"] and result["counts"] == {"train": 4, "valid": 2, "test": 2}
    assert "Registered in the catalogue" in err

    code, out, _ = run(capsys, "datasets", "list", "--json")
    assert code == 0 and [row["name"] for row in json.loads(out)] == ["cells"]

    code, out, _ = run(capsys, "datasets", "check", "cells")
    assert code == 0 and "0 errors" in out

    assert run(capsys, "datasets", "rename", "cells", "nuclei")[0] == 0
    code, _, err = run(capsys, "datasets", "delete", "nuclei")
    assert code == 2 and "repeat with --yes" in err
    assert run(capsys, "datasets", "delete", "nuclei", "--yes")[0] == 0
    assert json.loads(run(capsys, "datasets", "list", "--json")[1]) == []


def test_check_exits_1_and_names_the_file(tmp_path, data_env, capsys):
    source = make_flat(tmp_path / "src", n=4)
    (source / "masks" / "cell01.png").unlink()
    code, out, _ = run(capsys, "datasets", "check", str(source), "--json")
    report = json.loads(out)
    assert code == 1 and report["errors"] == 1
    assert report["findings"][0]["file"] == "images/cell01.png"


def test_failed_import_says_nothing_was_imported(tmp_path, data_env, capsys):
    source = make_flat(tmp_path / "src", n=4)
    (source / "images" / "cell00.png").write_bytes(b"")
    code, out, err = run(capsys, "datasets", "import", str(source), "--name", "bad")
    assert code == 1 and "is empty (0 bytes)" in out and "Nothing was imported" in err
    assert not (data_env.datasets_dir / "bad").exists()


def test_flat_import_with_split_and_seed(tmp_path, data_env, capsys):
    source = make_flat(tmp_path / "src", n=10)
    code, out, _ = run(capsys, "datasets", "import", str(source), "--split", "60,20,20", "--seed", "4", "--json")
    assert code == 0 and json.loads(out)["counts"] == {"train": 6, "valid": 2, "test": 2}
    assert json.loads(out)["name"] == "src"


def test_bad_split_is_a_usage_error(tmp_path, data_env, capsys):
    code, _, err = run(capsys, "datasets", "import", str(make_flat(tmp_path / "src", n=3)), "--split", "0.5,0.5")
    assert code == 2 and "three parts" in err


def test_unknown_dataset_name_lists_the_known_ones(tmp_path, data_env, capsys):
    run(capsys, "datasets", "import", str(make_flat(tmp_path / "src", n=3)), "--name", "known")
    code, _, err = run(capsys, "datasets", "check", "unknown")
    assert code == 2 and "Known datasets: known" in err


def test_import_while_the_dashboard_holds_the_catalogue(tmp_path, data_env, capsys):
    holder = store.connect(data_env.catalogue_path)  # stands in for the running dashboard
    try:
        script = (
            "from core.cli import main; import sys; "
            f"sys.exit(main(['datasets', 'import', {str(make_flat(tmp_path / 'src', n=3))!r}, '--name', 'x']))"
        )
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            cwd=REPO,
        )
        assert done.returncode == 0, done.stderr
        assert "the dashboard is running and holds the catalogue" in done.stderr.lower()
        listed = subprocess.run(
            [sys.executable, "-m", "core", "datasets", "list", "--json"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
        )
        assert [row["name"] for row in json.loads(listed.stdout)] == ["x"]
    finally:
        holder.close()


@pytest.mark.slow
def test_python_dash_m_core_with_progress_on_stderr(shared, tmp_path, data_env):
    done = subprocess.run(
        [sys.executable, "-m", "core", "datasets", "import", str(shared / "formats" / "ctc_tif"), "--name", "ctc"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert "Imported ctc: train 1, valid 1, test 1" in done.stdout
    assert "importing ctc" in done.stderr  # the progress bar


def test_images_only_import_then_add_more_and_list_the_label_states(tmp_path, data_env, capsys):
    from tests.helpers import blobs, write_image

    for k in range(5):
        write_image(tmp_path / "raw" / f"slide{k}.png", blobs(k)[0])
    code, _, err = run(capsys, "datasets", "import", str(tmp_path / "raw"), "--name", "raw")
    assert code == 1 and "Import them as unlabelled images" in err + _
    code, out, _ = run(capsys, "datasets", "import", str(tmp_path / "raw"), "--name", "raw", "--images-only", "--json")
    assert code == 0 and json.loads(out)["imported"]
    source = make_flat(tmp_path / "labelled", n=2)
    code, out, _ = run(capsys, "datasets", "add", "raw", str(source), "--split", "valid", "--json")
    added = json.loads(out)
    assert code == 0 and added["added"] == {"train": 0, "valid": 2, "test": 0} and added["labels"] == {"truth": 2}
    row = json.loads(run(capsys, "datasets", "list", "--json")[1])[0]
    assert (row["n_unlabelled"], row["n_truth"], row["n_images"]) == (5, 2, 7)
    code, out, _ = run(capsys, "datasets", "list")
    assert "5 unlabelled" in out
    code, _, err = run(capsys, "datasets", "add", "raw", str(source))
    assert code == 1 and "already holds" in err + _
