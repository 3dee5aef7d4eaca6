"""The Results page's model export: the format chosen reaches the worker, and a finished package is offered."""

from core import jobs
from core.jobs import JobDir
from tests.evaluation_helpers import evaluated_run


def test_the_bioimageio_format_is_exported_in_the_background_and_offered_as_a_zip(
    data_env, tmp_path, monkeypatch, open_page
):
    run = evaluated_run(data_env, tmp_path, monkeypatch)
    started = []
    monkeypatch.setattr(jobs, "submit", lambda job, request, settings, **_: started.append(request))
    app = open_page("results", run=run.run_id)
    app.radio(key="results-export-format").set_value("bioimageio").run()
    app.button(key="results-export").click().run()
    assert not app.exception
    assert started == [jobs.ExportRequest(run.run_id, str(run.path / "export" / "bioimageio"), format="bioimageio")]

    task = JobDir(run.path / "export")
    task.path.mkdir(parents=True, exist_ok=True)
    (task.path / "bioimageio.zip").write_bytes(b"PK\x05\x06" + bytes(18))  # what the worker leaves: an (empty) zip
    task.finish("bioimage.io package written", format="bioimageio")
    app = open_page("results", run=run.run_id)
    app.radio(key="results-export-format").set_value("bioimageio").run()
    assert any(b.proto.label == "Download the bioimage.io package (zip)" for b in app.get("download_button"))
