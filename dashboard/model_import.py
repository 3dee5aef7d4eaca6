"""Add a model from the BioImage Model Zoo: a bioimage.io package (zip upload or server path) imported in the
background, then usable by name like the shipped generalist."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import streamlit as st

from core import jobs
from core.io import write_bytes_atomic
from core.jobs import JobDir
from core.runs.folder import ACTIVE
from core.settings import resolve_inside_roots
from dashboard.access import may
from dashboard import context
from dashboard.predict_view import safe_name
from dashboard.task_progress import start_job, task_progress

HELP = (
    "A bioimage.io model package (rdf.yaml with its weights, as a zip or an unpacked folder), e.g. downloaded "
    "from the BioImage Model Zoo or exported by another dashboard. Packages with Keras, TensorFlow "
    "SavedModel or ONNX weights run here; with Keras weights they can be refined on your masks too."
)


def imports_root() -> Path:
    return context.settings().layout.model_imports


def _package_source(upload, typed: str) -> Path | None:
    """The uploaded zip saved under the data root, or the server path (inside the allowed folders)."""
    if upload is not None:
        folder = imports_root() / "uploads" / f"{datetime.now():%Y%m%d-%H%M%S}"
        path = folder / safe_name(upload.name)
        write_bytes_atomic(path, upload.getvalue())
        return path
    try:
        path = resolve_inside_roots(typed.strip(), context.settings().import_roots)
    except PermissionError as exc:
        st.error(str(exc))
        return None
    if not path.exists():
        st.error(f"{path} does not exist on the server.")
        return None
    return path


def model_import_panel() -> None:
    """Upload or name a package, import it in the background, show how it went."""
    settings = context.settings()
    upload = st.file_uploader(
        "Package (zip)", type=["zip"], key="model-import-upload", help=HELP, max_upload_size=settings.max_upload_mb
    )
    left, right = st.columns([2, 1])
    typed = left.text_input(
        "…or a package on the server",
        key="model-import-path",
        help="A package folder or zip on the server; it must lie inside: "
        + ", ".join(str(root) for root in settings.import_roots),
    )
    name = right.text_input(
        "Name (optional)",
        key="model-import-name",
        help="How the model is listed and addressed, e.g. zoo-nuclei; by default the package's own name.",
    )
    ready = upload is not None or bool(typed.strip())
    if st.button(
        "Import the model",
        icon=":material/download_for_offline:",
        key="model-import-go",
        disabled=not ready or not may("model.import"),
        help="Checks the package, converts its weights if needed and checks that it reproduces its own "
        "test output; runs in the background.",
    ):
        source = _package_source(upload, typed)
        if source is not None:
            job = JobDir(imports_root() / f"{datetime.now():%Y%m%d-%H%M%S}")
            if start_job(job, jobs.ModelImportRequest(package=str(source), name=name.strip())):
                st.session_state["model-import-job"] = str(job.path)
                st.rerun()
    shown = st.session_state.get("model-import-job")
    if shown:
        status = task_progress(JobDir(Path(shown)), "Model import")
        if status.state == "finished":
            st.success(f"{status.message} Pick it in the model box above.", icon=":material/check_circle:")
        elif status.state not in ACTIVE and status.state != "failed":
            st.info(f"Model import {status.state}.")
