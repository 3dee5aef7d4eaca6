"""Batch prediction spread over Dask workers: many images at once, and slides too large for one worker.

:func:`predict_files_dask` writes what :func:`core.prediction.job.predict_files` writes (the same folders, file
names, ``cells.csv``, ``images.csv`` and ``prediction.json``), from units of work of two kinds:

* an image at most :data:`BLOCK_SIDE` pixels a side goes to a worker as its path: the worker reads it, predicts
  it exactly as ``predict_files`` does (same model, same tile plan, same function: the same pixels), splits it
  into cells and writes its outputs;
* a larger image is read here, in the client, and cut into blocks (:func:`block_spans`); each block goes to a
  worker, which predicts it and sends back the 8-bit probability of the block's own part; the client stitches
  the parts into the slide's map, then splits it into cells and writes the outputs as for any image.

Blocks follow the model's tile grid: a block holds every tile that :func:`~core.infer.predict_image` would
blend into the block's own part, each at the same place, and it is scaled with the intensity range of the whole
slide, so the stitched map is the one predicted in one process (tested to the last 8-bit level).

**Where the work runs.** No scheduler address: a :class:`distributed.LocalCluster` of one single-threaded worker
process per core, each with a memory limit (:data:`WORKER_MEMORY_SHARE` of the machine shared among them).
An address: an existing scheduler (``dask scheduler``, or one started by dask-jobqueue on Slurm); its workers
must see the same files as the client (the run folder, the inputs and the output folder: a shared data root).
Each worker process loads the model once and keeps it (:func:`worker_model`); TensorFlow is imported by the
workers only.

**Resuming.** After an image's outputs are written, ``done/<name>.json`` records its rows of the tables and
what it was made from (the input file's size and time, the checkpoint, the tile plan, the post-processing).
Run again with the same inputs and output folder, finished images are not predicted again and their rows are
reused, so the tables stay complete.

**Memory.** A worker holds TensorFlow and its model, and either one image of at most ``BLOCK_SIDE`` pixels a
side with its outputs (as ``predict_files`` does), or one block at a time: for the default 512-pixel tiles with
64 pixels of overlap a block is at most 4,544 pixels a side (4,032 of its own plus 512 of margin), 62 MB for an
8-bit RGB slide, plus ``predict_image``'s float buffers of one tile row (18 MB), the network's activations for a
batch of 4 tiles (about 400 MB for a U-Net of 16 base filters) and the block's 8-bit map (20 MB). The client
sends at most one block per worker thread at a time. Measured with the generalist on a 10,000 × 10,000 RGB slide
(``python -m tests.bench --only cluster``): 1.4 GiB at most per worker, against 9.4 GiB for ``predict_files``.
The client holds the large image, its 8-bit probability map (1 byte a pixel, 2 with a seed map) and, once the
blocks are in, what splitting it into cells takes, as ``predict_files`` does: 8.5 GiB for that slide, about
90 bytes a pixel, so some 34 GiB for a 20,000 × 20,000 slide.

**Speed.** Spreading pays where there are more cores (or machines) than one process's TensorFlow keeps busy. On
2 cores (the same benchmark) 60 slides of 1600×1200 went at 0.83 times the speed of one process (one
TensorFlow process already keeps both cores busy, and two workers each load the model), and the
10,000 × 10,000 slide took 1.19 times as long: neighbouring blocks both predict the tiles they share (about 18 %
more tiles for that slide), and the client splits the slide into cells alone once the blocks are in.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from PIL import BmpImagePlugin, JpegImagePlugin

from core.accounts import acting
from core.models.config import RECURRENT_MODELS
from core.infer import InputSpec, Progress, TilePlan, predict_image
from core.io import TIFF_SUFFIXES, write_json_atomic
from core.jobs import JobDir
from core.postprocess import PostProcessing
from core.prediction.job import (
    PredictionError,
    PredictOptions,
    collect_inputs,
    output_names,
    prediction_settings,
    read_input,
    write_outputs,
    write_summary,
)
from core.runs.folder import RunDir
from core.runs.model import RunModel, checkpoint_path, load_run_model
from core.text import plural
from core.timelapse.video_files import is_video_file

log = logging.getLogger(__name__)
BLOCK_SIDE = 4096  # images with a side above this are cut into blocks spread over the workers
CONNECT_TIMEOUT_S = 10.0  # how long a scheduler address has to answer
WORKER_MEMORY_SHARE = 0.75  # of the machine, shared among local workers; the rest is the client's (it stitches)
DONE_FOLDER = "done"
OUTPUT_FILES = (("probabilities", ".png"), ("masks", ".png"), ("labels", ".tif"), ("overlays", ".png"))
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_DEFAULT_OPTIONS = PredictOptions()  # frozen, so one instance serves as every call's default


@dataclass(frozen=True)
class ClusterOptions:
    """Where the work runs and how it is cut.

    ``workers``: the local cluster's worker processes (default: one per core); ``memory_limit``: each local
    worker's, in bytes or as text such as ``"2GiB"`` (default: :data:`WORKER_MEMORY_SHARE` of the machine shared
    among them); ``block``: images with a side above this many pixels are cut into blocks; ``connect_timeout``:
    seconds a scheduler address has to answer.

    >>> ClusterOptions(workers=0)
    Traceback (most recent call last):
    ...
    ValueError: workers=0: a cluster needs at least one worker
    """

    workers: int | None = None
    memory_limit: int | str | None = None
    block: int = BLOCK_SIDE
    connect_timeout: float = CONNECT_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers={self.workers}: a cluster needs at least one worker")
        if self.block < 16:
            raise ValueError(f"block={self.block}: blocks must be at least 16 pixels")
        if self.connect_timeout <= 0:
            raise ValueError(f"connect_timeout={self.connect_timeout}: must be above 0 seconds")


@dataclass(frozen=True)
class ModelSource:
    """What a worker needs to load the run's model, and to know it already has: small, hashable, sent with every unit.

    ``stamp`` is the checkpoint file's modification time, so a run trained further is loaded afresh.
    ``loader`` is called on the worker as ``loader(RunDir(run_path), checkpoint)``.
    """

    run_path: str
    checkpoint: str
    stamp: int
    loader: Callable[[RunDir, str], RunModel] = load_run_model


@dataclass(frozen=True)
class ModelFacts:
    """What the client needs to know of the model to cut large images: its input, down-sampling and tile plan."""

    spec: InputSpec
    multiple: int
    plan: TilePlan


@dataclass(frozen=True)
class ImageUnit:
    """One image a worker reads, predicts and writes: where it is, what its outputs are called and made with."""

    path: Path
    name: str
    out_dir: Path
    settings: PostProcessing
    plan: TilePlan
    made_from: dict


@dataclass(frozen=True)
class _SlideRange(InputSpec):
    """The model's input settings with the intensity range measured on the whole slide, so every block is scaled
    alike (a block's own range would brighten dim blocks and show seams)."""

    limits: tuple[float, float] = (0.0, 1.0)

    def intensity_range(self, view: np.ndarray) -> tuple[float, float]:
        return self.limits


# --- on the workers -------------------------------------------------------------------------------------------

_model_lock = threading.Lock()  # a worker with several threads loads the model once, not once per thread
_models: dict[ModelSource, RunModel] = {}
_loads = 0


def worker_model(source: ModelSource) -> RunModel:
    """The model of ``source``, loaded on the first call in this process and kept for the next units.

    One model at a time: a unit of another run (or of a newer checkpoint) replaces it, so a long-lived worker
    serving several jobs never holds more than one.
    """
    global _loads
    with _model_lock:
        model = _models.get(source)
        if model is None:
            _models.clear()
            log.info("loading the model of %s (%s checkpoint)", source.run_path, source.checkpoint)
            model = source.loader(RunDir(Path(source.run_path)), source.checkpoint)
            _models[source] = model
            _loads += 1
        return model


def model_loads() -> int:
    """How many times this process has loaded a model (``Client.run(model_loads)`` asks every worker)."""
    return _loads


def describe_model(source: ModelSource, options: PredictOptions) -> ModelFacts:
    """The model's input, down-sampling and tile plan for ``options`` (run on a worker: loading imports Keras)."""
    model = worker_model(source)
    return ModelFacts(model.spec, model.multiple, model.plan(options.tile, options.overlap, options.tta))


def predict_unit(source: ModelSource, unit: ImageUnit) -> dict:
    """Read, predict, split into cells and write one image; its table rows, or ``{"skipped": why}``."""
    image = read_input(unit.path)
    if isinstance(image, str):
        return {"skipped": image}
    model = worker_model(source)
    maps, notes = predict_image(model.predict, image, model.spec, unit.plan, model.multiple, out_dtype=np.uint8)
    cells, row = write_outputs(unit.out_dir, unit.path, unit.name, image, maps, notes, unit.settings)
    return mark_done(unit.out_dir, unit.name, unit.made_from, cells, row)


def predict_block(
    source: ModelSource, block: np.ndarray, limits: tuple[float, float], plan: TilePlan, keep: tuple[slice, slice]
) -> np.ndarray:
    """The 8-bit probability of the ``keep`` part of one block of a slide.

    ``block`` holds the slide's raw pixels (all its channels) with the margin :func:`block_spans` gives;
    ``limits`` is the slide's intensity range. Tiles are used whatever the block's size (``whole_pixels`` 0), as
    the slide itself is tiled.
    """
    model = worker_model(source)
    spec = _SlideRange(**{f.name: getattr(model.spec, f.name) for f in fields(model.spec)}, limits=limits)
    maps, _ = predict_image(
        model.predict, block, spec, replace(plan, whole_pixels=0), model.multiple, out_dtype=np.uint8
    )
    return np.ascontiguousarray(maps[keep])


# --- cutting slides into blocks -------------------------------------------------------------------------------


def block_spans(length: int, block: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Blocks along one axis of a slide: ``(read start, read stop, own start, own stop)`` of each.

    A block's own parts are whole multiples of the tile stride (``tile - overlap``), at least one stride and at
    most ``block`` pixels where that allows. Its margin reaches one stride back and ``overlap`` ahead: exactly the
    tiles :func:`~core.infer.tile_starts` places over the whole axis that touch the block's own part, so tiling the
    block reproduces them. The slide's last tile sits at ``length - tile``, off the stride grid: the last block is
    at least a tile long so that tile falls in it alone.

    >>> block_spans(1000, 448, 512, 64)
    [(0, 512, 0, 448), (0, 1000, 448, 1000)]
    >>> block_spans(3000, 1000, 512, 64)
    [(0, 960, 0, 896), (448, 1856, 896, 1792), (1344, 3000, 1792, 3000)]
    >>> block_spans(300, 100, 128, 32)  # the last block at least a tile long
    [(0, 128, 0, 96), (0, 300, 96, 300)]
    >>> block_spans(100, 50, 128, 32)  # shorter than a tile: one block
    [(0, 100, 0, 100)]
    """
    stride = tile - overlap
    own = max(1, block // stride) * stride
    bounds = list(range(own, length, own))
    while bounds and length - bounds[-1] < tile:
        bounds.pop()
    edges = [0, *bounds, length]
    return [
        (max(0, start - stride), stop + overlap if stop < length else length, start, stop)
        for start, stop in zip(edges, edges[1:])
    ]


def image_size(path: Path) -> tuple[int, int] | None:
    """``(height, width)`` of an image file from its header, without reading its pixels.

    None when the header cannot be read: the image then goes to a worker whole, which reads it (or says why not).
    """
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            with tifffile.TiffFile(path) as tif:
                dims = [side for side in tif.series[0].shape if side != 1]  # squeezed, as read_image does
            if len(dims) == 3 and dims[0] in (3, 4) and dims[-1] not in (3, 4):
                dims = dims[1:]  # channels first
            return (int(dims[0]), int(dims[1])) if len(dims) in (2, 3) else None
        with path.open("rb") as handle:
            head = handle.read(24)
        if head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR":
            return int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big")
        # the plug-in classes read the header only, without Image.open's refusal of very large pictures
        reader = BmpImagePlugin.BmpImageFile if head[:2] == b"BM" else JpegImagePlugin.JpegImageFile
        with reader(str(path)) as picture:
            return picture.height, picture.width
    except (OSError, ValueError, IndexError, SyntaxError, tifffile.TiffFileError) as exc:
        log.info("%s: size not readable from the header (%s)", path, exc)
        return None


@dataclass
class _Slide:
    """A large image being predicted block by block: its pixels, its stitched map and the blocks left to send."""

    index: int
    path: Path
    name: str
    made: dict
    image: np.ndarray
    notes: list[str]
    limits: tuple[float, float]
    maps: np.ndarray
    blocks: Iterator[tuple[np.ndarray, tuple[slice, slice], tuple[slice, slice]]]
    count: int
    sent: int = 0
    received: int = 0

    @classmethod
    def read(cls, index: int, path: Path, name: str, made: dict, facts: ModelFacts, block: int) -> _Slide | str:
        """The slide at ``path`` ready to send (its intensity range measured as ``predict_image`` does), or why not."""
        image = read_input(path)
        if isinstance(image, str):
            return image
        view, notes = facts.spec.select(image)
        limits = facts.spec.intensity_range(view)
        del view  # a converted copy for some models: not kept while the blocks are out
        plan = facts.plan
        height, width = image.shape[:2]
        maps = np.zeros((height, width, *(() if plan.channels == 1 else (plan.channels,))), np.uint8)
        count = len(block_spans(height, block, plan.tile, plan.overlap)) * len(
            block_spans(width, block, plan.tile, plan.overlap)
        )
        return cls(
            index,
            path,
            name,
            made,
            image,
            facts.spec.depth_note(image) + notes,
            limits,
            maps,
            iter_blocks(image, block, plan),
            count,
        )

    @property
    def unsent(self) -> int:
        return self.count - self.sent


def iter_blocks(
    image: np.ndarray, block: int, plan: TilePlan
) -> Iterator[tuple[np.ndarray, tuple[slice, slice], tuple[slice, slice]]]:
    """Every block of ``image`` as :func:`predict_block` takes it: pixels, own part within, place in the image.

    >>> plan = TilePlan(tile=128, overlap=32)
    >>> [(pixels.shape, place) for pixels, _, place in iter_blocks(np.zeros((300, 100)), 96, plan)]
    [((128, 100), (slice(0, 96, None), slice(0, 100, None))), ((300, 100), (slice(96, 300, None), slice(0, 100, None)))]
    """
    for top, bottom, own_top, own_bottom in block_spans(image.shape[0], block, plan.tile, plan.overlap):
        for left, right, own_left, own_right in block_spans(image.shape[1], block, plan.tile, plan.overlap):
            keep = slice(own_top - top, own_bottom - top), slice(own_left - left, own_right - left)
            yield (
                np.ascontiguousarray(image[top:bottom, left:right]),
                keep,
                (slice(own_top, own_bottom), slice(own_left, own_right)),
            )


# --- resuming -------------------------------------------------------------------------------------------------


def made_from(path: Path, source: ModelSource, plan: TilePlan, settings: PostProcessing) -> dict:
    """What an image's outputs depend on: the input file (size and time), the checkpoint, the plan, the settings.

    As JSON reads it back, so that a record compares equal to a fresh one.
    """
    try:
        stat = path.stat()
        size, modified = stat.st_size, stat.st_mtime_ns
    except OSError:  # gone since it was listed: nothing matches, the worker says why it cannot read it
        size, modified = -1, -1
    return json.loads(
        json.dumps(
            {
                "source": str(path),
                "size": size,
                "modified_ns": modified,
                "run": source.run_path,
                "checkpoint": source.checkpoint,
                "checkpoint_modified_ns": source.stamp,
                "tile": plan.tile,
                "overlap": plan.overlap,
                "tta": plan.tta,
                "channels": plan.channels,
                "postprocessing": settings.to_dict(),
            }
        )
    )


def done_path(out_dir: Path, name: str) -> Path:
    return out_dir / DONE_FOLDER / f"{name}.json"


def mark_done(out_dir: Path, name: str, made: dict, cells: list[dict], row: dict) -> dict:
    """Record a finished image (after its outputs: a crash in between leaves it unfinished); its table rows."""
    result = {"cells": cells, "row": row}
    write_json_atomic(done_path(out_dir, name), {"made_from": made, **result})
    return result


def finished_rows(out_dir: Path, name: str, made: dict) -> dict | None:
    """The table rows of an image finished earlier from the same input, model and settings; None otherwise.

    >>> finished_rows(Path("/nonexistent"), "a", {}) is None
    True
    """
    try:
        record = json.loads(done_path(out_dir, name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("made_from") != made:
        return None
    if not all((out_dir / folder / f"{name}{suffix}").is_file() for folder, suffix in OUTPUT_FILES):
        return None
    return {"cells": record.get("cells", []), "row": record.get("row")}


# --- the client -----------------------------------------------------------------------------------------------


def local_workers() -> int:
    """One worker per core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def local_cluster(options: ClusterOptions = ClusterOptions()):
    """A :class:`distributed.LocalCluster` of single-threaded worker processes (the caller closes it).

    ``options.workers`` processes (default: one per core), each limited to ``options.memory_limit`` (default:
    :data:`WORKER_MEMORY_SHARE` of the machine shared among them; a worker past it is restarted by its nanny).
    """
    import psutil
    from distributed import LocalCluster

    workers = options.workers or local_workers()
    memory = options.memory_limit or int(psutil.virtual_memory().total * WORKER_MEMORY_SHARE / workers)
    # one thread each: TensorFlow's own thread pools would otherwise take every core in every worker
    env = {
        "TF_NUM_INTRAOP_THREADS": "1",
        "TF_NUM_INTEROP_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
    }
    # the scheduler's web server on a free port: a second cluster on the machine neither fails nor warns
    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, memory_limit=memory, dashboard_address=":0", env=env
    )
    log.info("local Dask cluster at %s: %s", cluster.scheduler_address, plural(workers, "worker"))
    return cluster


def _open_client(address: str | None, options: ClusterOptions, stack: ExitStack):
    """A client of the scheduler at ``address``, or of a new local cluster; both closed when ``stack`` closes."""
    from distributed import Client

    if address is None:
        cluster = stack.enter_context(local_cluster(options))
        return stack.enter_context(Client(cluster, set_as_default=False))
    try:
        client = Client(address, timeout=options.connect_timeout, set_as_default=False)
    # MemoryError: a service other than a Dask scheduler on that port answers bytes read as an absurd length
    except (OSError, TimeoutError, ValueError, MemoryError) as exc:
        raise PredictionError(
            f"No Dask scheduler answered at {address} within {options.connect_timeout:g} s "
            f"({exc}). Check the address (e.g. tcp://head-node:8786) and that the scheduler runs, "
            "or leave the address out to use a local cluster."
        ) from exc
    return stack.enter_context(client)


def predict_files_dask(
    run: RunDir,
    inputs: list[Path],
    out_dir: Path,
    options: PredictOptions = _DEFAULT_OPTIONS,
    address: str | None = None,
    progress: Progress | None = None,
    cluster: ClusterOptions = ClusterOptions(),
) -> dict:
    """Predict every input image with the run's model on Dask workers; write what :func:`predict_files` writes.

    Parameters
    ----------
    run, inputs, out_dir, options
        As for :func:`core.prediction.job.predict_files`.
    address
        A Dask scheduler's address (e.g. ``tcp://head-node:8786``); None starts a local cluster for this call.
    progress
        Called with (images finished, images) as the work goes; ``out_dir/status.json`` says the same.
    cluster
        The local cluster's size and memory, the block size, the connection timeout.

    Returns
    -------
    dict
        The summary written to ``prediction.json``, as :func:`predict_files` returns it.

    Raises
    ------
    PredictionError
        When no image could be read, or no scheduler answers at ``address``.
    FileNotFoundError
        When the run has no such checkpoint.
    """
    acting.check("predict", run.run_id)
    if run.read_config().get("train", {}).get("model", {}).get("name") in RECURRENT_MODELS:
        raise PredictionError(
            f"Model {run.run_id} sees several frames of a video at once; the cluster predicts "
            "images one by one, so predict videos with it without the cluster."
        )
    paths = collect_inputs(inputs)
    videos = [path for path in paths if is_video_file(path)]
    if videos and len(videos) == len(paths):
        raise PredictionError(
            f"{', '.join(p.name for p in videos[:3])}{' …' if len(videos) > 3 else ''}: "
            "time-lapse videos are predicted without the cluster (their frames are linked into "
            "tracks in one process); predict them without --dask."
        )
    paths = [path for path in paths if path not in set(videos)]
    out_dir = Path(out_dir).resolve()
    task = JobDir(out_dir)
    task.start(
        len(paths), f"connecting to the Dask scheduler at {address}" if address else "starting a local Dask cluster"
    )
    settings = prediction_settings(run, options)
    source = ModelSource(
        str(run.path.resolve()),
        options.checkpoint,
        checkpoint_path(run, options.checkpoint).stat().st_mtime_ns,
        load_run_model,
    )
    with ExitStack() as stack:
        client = _open_client(address, cluster, stack)
        task.progress(0, len(paths), "loading the model on a worker")
        facts = client.submit(describe_model, source, options, pure=False).result()
        results = _Batch(client, source, facts, settings, out_dir, cluster.block, task, progress).run(paths)
    cells, images = [], []
    skipped = [f"{path.name}: a time-lapse video; predict videos without the cluster" for path in videos]
    for result in results:
        if "skipped" in result:
            skipped.append(result["skipped"])
        else:
            cells.extend(result["cells"])
            images.append(result["row"])
    return write_summary(run, out_dir, task, settings, facts.plan, cells, images, skipped)


class _Batch:
    """The client's loop: images sent whole, slides sent block by block, results gathered as they finish."""

    def __init__(
        self,
        client,
        source: ModelSource,
        facts: ModelFacts,
        settings: PostProcessing,
        out_dir: Path,
        block: int,
        task: JobDir,
        progress: Progress | None,
    ):
        self.client, self.source, self.facts, self.settings = client, source, facts, settings
        self.out_dir, self.block, self.task, self.progress = out_dir, block, task, progress
        self.results: list[dict | None] = []
        self.slide: _Slide | None = None
        self.blocks: dict[str, tuple[Any, tuple[slice, slice]]] = {}  # task key: (scattered pixels, where)
        self.tag = uuid.uuid4().hex[:8]  # keeps the task keys of two jobs on one scheduler apart

    def run(self, paths: list[Path]) -> list[dict]:
        from distributed import as_completed

        self.results = [None] * len(paths)
        whole, large = [], deque()
        for index, (path, name) in enumerate(zip(paths, output_names(paths))):
            made = made_from(path, self.source, self.facts.plan, self.settings)
            self.results[index] = finished_rows(self.out_dir, name, made)
            if self.results[index] is None:
                size = image_size(path)
                (large if size and max(size) > self.block else whole).append((index, path, name, made))
        resumed = len(paths) - len(whole) - len(large)
        if resumed:
            log.info("%s already predicted: skipped", plural(resumed, "image"))
        self._report(f"{plural(resumed, 'image')} done before, {len(whole)} to send whole, {len(large)} in blocks")
        pending = as_completed(loop=self.client.loop)
        owners = {}
        for index, path, name, made in whole:
            unit = ImageUnit(path, name, self.out_dir, self.settings, self.facts.plan, made)
            future = self.client.submit(
                predict_unit, self.source, unit, pure=False, key=f"predict-image-{self.tag}-{index}"
            )
            owners[future.key] = index
            pending.add(future)
        self._next_slide(large, pending)
        for future in pending:
            if future.key in owners:
                self.results[owners.pop(future.key)] = future.result()
                self._report(f"predicted {self.finished} of {plural(len(paths), 'image')}")
            else:
                self._receive(future, large, pending)
        return [result for result in self.results if result is not None]

    @property
    def finished(self) -> int:
        return sum(result is not None for result in self.results)

    def _report(self, message: str) -> None:
        self.task.progress(self.finished, len(self.results), message)
        if self.progress:
            self.progress(self.finished, len(self.results))

    def _next_slide(self, large: deque, pending) -> None:
        """Read the next slide that can be read (one at a time: it is the client's largest memory) and send blocks."""
        self.slide = None
        while large and self.slide is None:
            index, path, name, made = large.popleft()
            slide = _Slide.read(index, path, name, made, self.facts, self.block)
            if isinstance(slide, str):
                self.results[index] = {"skipped": slide}
            else:
                self.slide = slide
        self._send(pending)

    def _send(self, pending) -> None:
        """Send blocks until every worker thread has one (a worker never holds much more than one block)."""
        if self.slide is None:
            return
        room = max(1, sum(self.client.nthreads().values())) - len(self.blocks)
        for _ in range(min(room, self.slide.unsent)):
            pixels, keep, where = next(self.slide.blocks)
            self.slide.sent += 1
            data = self.client.scatter(pixels, hash=False)
            # before the whole images queued earlier: the slide's memory on the client is freed sooner
            future = self.client.submit(
                predict_block,
                self.source,
                data,
                self.slide.limits,
                self.facts.plan,
                keep,
                pure=False,
                priority=1,
                key=f"predict-block-{self.tag}-{uuid.uuid4().hex}",
            )
            self.blocks[future.key] = (data, where)
            pending.add(future)

    def _receive(self, future, large: deque, pending) -> None:
        """Put a finished block in its place; a complete slide is split into cells and written here."""
        slide = self.slide
        _, where = self.blocks.pop(future.key)
        slide.maps[where] = future.result()
        slide.received += 1
        self._report(f"{slide.path.name}: block {slide.received} of {slide.count}")
        if slide.received == slide.count:
            cells, row = write_outputs(
                self.out_dir, slide.path, slide.name, slide.image, slide.maps, slide.notes, self.settings
            )
            self.results[slide.index] = mark_done(self.out_dir, slide.name, slide.made, cells, row)
            self._report(f"predicted {self.finished} of {plural(len(self.results), 'image')}")
            self._next_slide(large, pending)
        else:
            self._send(pending)
