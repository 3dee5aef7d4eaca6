"""What a job is asked to do, as a typed request saved in its folder (``request.json``).

Pages and commands build a request; the worker (``python -m core job --job-dir DIR``, wherever an executor
starts it) reads it back and runs the same command-line verb a person would type, so the dashboard and the
command line share one code path and one set of checks. Only this module knows how a request becomes the
verb's arguments.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

from core.io import write_json_atomic


class RequestError(ValueError):
    """A request file that cannot be read as one of the known requests."""


EXPORT_FORMATS = ("keras", "bioimageio")  # what ``python -m core export --format`` accepts


@dataclass(frozen=True)
class TrainRequest:
    """Train the run whose folder is the job folder (or find its learning rate, or resume it)."""

    kind: ClassVar[str] = "train"
    action: ClassVar[str] = "train.launch"  # the permission it needs (core.accounts.roles.ACTIONS)
    resume: bool = False
    lr_find: bool = False

    def arguments(self, job_path: Path) -> list[str]:
        return (
            ["train", "--run-dir", str(job_path)]
            + (["--resume"] if self.resume else [])
            + (["--lr-find"] if self.lr_find else [])
        )


@dataclass(frozen=True)
class EvaluateRequest:
    """Score a run on a split of a dataset; the job folder is the evaluation's folder."""

    kind: ClassVar[str] = "evaluate"
    action: ClassVar[str] = "evaluate"  # the permission it needs (core.accounts.roles.ACTIONS)
    run_id: str
    dataset: str
    split: str
    tta: bool = False

    def arguments(self, job_path: Path) -> list[str]:
        return ["evaluate", self.run_id, "--dataset", self.dataset, "--split", self.split] + (
            ["--tta"] if self.tta else []
        )


@dataclass(frozen=True)
class PredictRequest:
    """Segment image files with a run; the job folder is the prediction's output folder."""

    kind: ClassVar[str] = "predict"
    action: ClassVar[str] = "predict"  # the permission it needs (core.accounts.roles.ACTIONS)
    run_id: str
    inputs: tuple[str, ...]
    tile: int | None = None
    overlap: int = 64
    tta: bool = False
    threshold: float | None = None
    checkpoint: str = "best"
    dask: str | None = None  # "local" for a cluster on this machine, else a scheduler address
    # temporal post-processing of videos (multi-frame TIFFs): on/off, smoothing in frames, smallest cell in pixels
    temporal: bool = False
    temporal_sigma: float = 1.0
    temporal_min_size: int = 100

    def arguments(self, job_path: Path) -> list[str]:
        arguments = [
            "predict",
            self.run_id,
            *self.inputs,
            "--out",
            str(job_path),
            "--overlap",
            str(self.overlap),
            "--checkpoint",
            self.checkpoint,
        ]
        if self.temporal:
            arguments += [
                "--temporal",
                "--temporal-sigma",
                repr(float(self.temporal_sigma)),
                "--temporal-min-size",
                str(int(self.temporal_min_size)),
            ]
        if self.tile is not None:
            arguments += ["--tile", str(self.tile)]
        if self.threshold is not None:
            arguments += ["--threshold", repr(float(self.threshold))]
        if self.tta:
            arguments.append("--tta")
        if self.dask is not None:
            arguments += ["--dask"] + ([] if self.dask == "local" else [self.dask])
        return arguments


@dataclass(frozen=True)
class ExportRequest:
    """Export a run's model into ``out``; the job folder is the run's ``export`` folder.

    ``format``: ``keras`` (model.keras, SavedModel, model.json) or ``bioimageio`` (a bioimage.io package).
    """

    kind: ClassVar[str] = "export"
    action: ClassVar[str] = "export"  # the permission it needs (core.accounts.roles.ACTIONS)
    run_id: str
    out: str
    format: str = "keras"

    def __post_init__(self) -> None:
        if self.format not in EXPORT_FORMATS:
            raise RequestError(
                f"an export request's format is {self.format!r}; expected one of {', '.join(EXPORT_FORMATS)}"
            )

    def arguments(self, job_path: Path) -> list[str]:
        return ["export", self.run_id, "--out", self.out] + (
            ["--format", self.format] if self.format != "keras" else []
        )


@dataclass(frozen=True)
class ProposeRequest:
    """Let a model propose masks for a dataset's images without a person's mask."""

    kind: ClassVar[str] = "propose"
    action: ClassVar[str] = "propose"  # the permission it needs (core.accounts.roles.ACTIONS)
    dataset: str
    model: str

    def arguments(self, job_path: Path) -> list[str]:
        return ["propose", self.dataset, "--model", self.model, "--task-dir", str(job_path)]


@dataclass(frozen=True)
class ModelImportRequest:
    """Bring a bioimage.io package (a folder or zip) into the model registry under ``name`` (or its own)."""

    kind: ClassVar[str] = "model-import"
    action: ClassVar[str] = "model.import"  # the permission it needs (core.accounts.roles.ACTIONS)
    package: str
    name: str = ""

    def arguments(self, job_path: Path) -> list[str]:
        return ["models", "import", self.package, "--task-dir", str(job_path)] + (
            ["--name", self.name] if self.name else []
        )


JobRequest = TrainRequest | EvaluateRequest | PredictRequest | ExportRequest | ProposeRequest | ModelImportRequest
KINDS: dict[str, type] = {
    cls.kind: cls
    for cls in (TrainRequest, EvaluateRequest, PredictRequest, ExportRequest, ProposeRequest, ModelImportRequest)
}


def request_to_dict(request: JobRequest) -> dict[str, Any]:
    """The JSON object of a request: its kind and its fields.

    >>> request_to_dict(EvaluateRequest("r1", "nuclei", "test"))
    {'kind': 'evaluate', 'run_id': 'r1', 'dataset': 'nuclei', 'split': 'test', 'tta': False}
    """
    data = asdict(request)
    return {
        "kind": request.kind,
        **{key: list(value) if isinstance(value, tuple) else value for key, value in data.items()},
    }


def request_from_dict(data: Any) -> JobRequest:
    """A request from its JSON object; unknown kinds and fields are refused by name.

    >>> request_from_dict({"kind": "train", "resume": True})
    TrainRequest(resume=True, lr_find=False)
    >>> request_from_dict({"kind": "train", "speed": 2})
    Traceback (most recent call last):
    ...
    core.jobs.requests.RequestError: a train request has no field 'speed' (it has: resume, lr_find)
    """
    if not isinstance(data, dict):
        raise RequestError(f"a job request must be a JSON object, got {type(data).__name__}")
    kind = data.get("kind")
    if kind not in KINDS:
        raise RequestError(f"unknown job kind {kind!r} (known: {', '.join(KINDS)})")
    cls = KINDS[kind]
    names = [item.name for item in fields(cls)]
    values = {key: value for key, value in data.items() if key != "kind"}
    for key in values:
        if key not in names:
            raise RequestError(f"a {kind} request has no field {key!r} (it has: {', '.join(names)})")
    if "inputs" in values:
        values["inputs"] = tuple(str(value) for value in values["inputs"])
    try:
        return cls(**values)
    except TypeError as exc:  # a required field is missing
        raise RequestError(f"a {kind} request is incomplete: {exc}") from exc


def write_request(job_path: Path, request: JobRequest) -> None:
    write_json_atomic(Path(job_path) / "request.json", request_to_dict(request))


def read_request(job_path: Path) -> JobRequest:
    """The request saved in a job folder; :class:`RequestError` naming the file when it cannot be read."""
    path = Path(job_path) / "request.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RequestError(f"{path} is missing: this folder holds no job request") from exc
    except (OSError, ValueError) as exc:
        raise RequestError(f"{path} cannot be read as JSON ({exc})") from exc
    try:
        return request_from_dict(data)
    except RequestError as exc:
        raise RequestError(f"{path}: {exc}") from exc
