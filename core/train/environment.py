"""TensorFlow set up for this machine: threads, device, mixed precision, seeds (configured by workers only).

TensorFlow is imported inside the functions that need it, never when this module is imported: the dashboard
reads the remembered precision decision (:func:`remembered_precision`, :func:`auto_precision_note`) without
loading TensorFlow.

*auto* precision on a CPU is decided once per machine: :func:`precision_probe` times real training steps of the
Quick preset's model in float32 and in bfloat16, in a child process, and picks bfloat16 only when its median step
is at least :data:`BFLOAT16_MARGIN` faster. The decision is kept in a per-machine cache folder
(:func:`machine_cache_dir`, shared by every data root on the machine) with the CPU model and TensorFlow version it
was measured with; a different CPU or TensorFlow version is measured again.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from core.text import plural

log = logging.getLogger(__name__)

PROBE_FILE = "precision-probe-v3.json"  # v2 records came from a probe too short to be stable: not reused
BFLOAT16_MARGIN = 0.15  # bfloat16 is chosen only when its median step is at least 15 % faster than float32's
# The probe's training step: the Quick preset's model and batch (core.train.presets), on random images.
PROBE_MODEL = {"name": "unet", "base_filters": 16, "depth": 4, "batch_norm": False}
PROBE_BATCH = (8, 256, 256, 1)
PROBE_WARMUP = 2  # untimed steps per precision (the first one traces the graph)
PROBE_STEPS = 8  # timed steps per precision; their median is compared
PROBE_TIMEOUT_S = 300
BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")
TENSORFLOW_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tensorflow-intel", "tf-nightly")


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_supports_bfloat16() -> bool:
    """True when the CPU has native bfloat16 arithmetic (AVX-512 BF16 or AMX)."""
    flags = _cpuinfo()
    return any(flag in flags for flag in BFLOAT16_FLAGS)


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's model name and its bfloat16 instruction sets: what a precision decision is valid for.

    Read from ``/proc/cpuinfo`` (``model name``), else :func:`platform.processor`; the bfloat16 flags are
    added because virtual machines often report a bare family name.

    >>> cpu_model("processor : 0\\nmodel name : AMD EPYC\\nflags : fpu avx512f avx512_bf16\\n")
    'AMD EPYC [avx512_bf16]'
    >>> cpu_model("model name\\t: Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz\\nflags\\t: fpu avx512f\\n")
    'Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz'
    """
    text = _cpuinfo() if cpuinfo is None else cpuinfo
    name = next(
        (line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name") and ":" in line),
        "",
    )
    name = name or platform.processor() or platform.machine() or "unknown CPU"
    flags = next(
        (line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags") and ":" in line), []
    )
    found = [flag for flag in BFLOAT16_FLAGS if flag in flags]
    return f"{name} [{' '.join(found)}]" if found else name


def tensorflow_version() -> str:
    """The installed TensorFlow's version, from the package metadata (TensorFlow itself is not imported).

    >>> isinstance(tensorflow_version(), str)
    True
    """
    for distribution in TENSORFLOW_DISTRIBUTIONS:
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def machine_cache_dir() -> Path | None:
    """The per-machine cache folder: ``$XDG_CACHE_HOME/cellseg``, else ``~/.cache/cellseg`` (None: no home).

    Not the data root's ``cache/``: the precision decision belongs to the machine, not to the data, so every data
    root on a machine (and every test's temporary one) shares one measurement instead of repeating it.

    >>> machine_cache_dir() is None or machine_cache_dir().name == "cellseg"
    True
    """
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    if base:
        return Path(base) / "cellseg"
    try:
        return Path.home() / ".cache" / "cellseg"
    except RuntimeError:  # no home folder can be determined (e.g. a service account without HOME)
        return None


def bfloat16_wins(float32_s: float, bfloat16_s: float, margin: float = BFLOAT16_MARGIN) -> bool:
    """Whether a bfloat16 step of ``bfloat16_s`` seconds is at least ``margin`` faster than a float32 one.

    Faster means more steps per second: bfloat16 wins when ``float32_s / bfloat16_s >= 1 + margin``.

    >>> bfloat16_wins(1.0, 0.5), bfloat16_wins(1.0, 0.9), bfloat16_wins(0.050, 0.043)  # 2×, 1.11×, 1.16×
    (True, False, True)
    >>> bfloat16_wins(1.15, 1.0), bfloat16_wins(1.149, 1.0)  # exactly 15 % faster is enough
    (True, False)
    """
    return bfloat16_s > 0 and float32_s >= bfloat16_s * (1 + margin)


def summarise_probe(float32_steps: list[float], bfloat16_steps: list[float], margin: float = BFLOAT16_MARGIN) -> dict:
    """The medians of the timed steps, bfloat16's speed relative to float32 and the decision.

    >>> summary = summarise_probe([1.0, 1.1, 0.9, 5.0], [0.5, 0.4, 0.6, 0.5])
    >>> summary["float32_s"], summary["bfloat16_s"], summary["speed_ratio"], summary["decision"]
    (1.05, 0.5, 2.1, 'bfloat16')
    >>> summarise_probe([1.0] * 8, [0.95] * 8)["decision"]  # 5 % faster: within the margin, float32
    'float32'
    """
    float32_s, bfloat16_s = statistics.median(float32_steps), statistics.median(bfloat16_steps)
    faster = bfloat16_wins(float32_s, bfloat16_s, margin)
    return {
        "float32_s": float32_s,
        "bfloat16_s": bfloat16_s,
        "speed_ratio": round(float32_s / bfloat16_s, 3) if bfloat16_s > 0 else 0.0,
        "margin": margin,
        "float32_steps": list(float32_steps),
        "bfloat16_steps": list(bfloat16_steps),
        "bfloat16_faster": faster,
        "decision": "bfloat16" if faster else "float32",
    }


def choose_precision(requested: str, has_gpu: bool, cpu_bf16_faster: bool) -> str:
    """The compute precision for a request (``auto`` picks the fast one for the hardware).

    >>> [choose_precision("auto", gpu, fast) for gpu, fast in ((False, True), (True, True), (False, False))]
    ['bfloat16', 'float16', 'float32']
    >>> choose_precision("float16", False, True)  # float16 is slow on CPUs
    'float32'
    """
    if requested == "auto":
        return "float16" if has_gpu else "bfloat16" if cpu_bf16_faster else "float32"
    if requested == "float16" and not has_gpu:
        return "float32"
    return requested


def _probe_models() -> dict:
    """The Quick preset's model compiled once under each policy, with a batch of random images and targets."""
    import keras
    import numpy as np

    from core.models.config import ModelConfig
    from core.models.registry import build_model

    models = {}
    for policy in ("float32", "mixed_bfloat16"):  # a layer keeps the policy it was built under
        keras.mixed_precision.set_global_policy(policy)
        model = build_model(ModelConfig(**PROBE_MODEL), PROBE_BATCH[-1])
        model.compile(optimizer="adam", loss="binary_crossentropy")
        models[policy] = model
    keras.mixed_precision.set_global_policy("float32")
    data = np.random.default_rng(0).random(PROBE_BATCH, dtype=np.float32)
    return {"models": models, "data": data, "target": (data > 0.5).astype(np.float32)}


def _probe_step_times() -> dict[str, list[float]]:
    """Seconds of each timed training step of the Quick model, per policy, after warm-up.

    A real U-Net of the size Quick trains, not a plain convolution stack: on some CPUs only certain bfloat16
    kernels (e.g. transposed convolutions) hit the instructions the CPU refuses, and a tiny model's steps last
    a few milliseconds, too short to tell the precisions apart on a busy machine. The steps of the two
    precisions alternate, so a change of load on the machine slows both alike.
    """
    built = _probe_models()
    models, data, target = built["models"], built["data"], built["target"]
    for model in models.values():
        for _ in range(PROBE_WARMUP):
            model.train_on_batch(data, target)
    times: dict[str, list[float]] = {policy: [] for policy in models}
    for _ in range(PROBE_STEPS):
        for policy, model in models.items():
            started = time.perf_counter()
            model.train_on_batch(data, target)
            times[policy].append(time.perf_counter() - started)
    return times


def probe_report() -> None:
    """Entry point of the probe's child process: print the step times of both precisions as JSON."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    times = _probe_step_times()
    sys.stdout.write(json.dumps({"float32_steps": times["float32"], "bfloat16_steps": times["mixed_bfloat16"]}) + "\n")


def _run_probe() -> dict:
    """Time both precisions in a child process: the step times, or why bfloat16 is unusable.

    Some machines list bfloat16/AMX instructions that the (virtual) CPU then refuses: TensorFlow
    dies with "illegal instruction". In a child, that crash only means "bfloat16 unusable here".
    """
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    try:
        done = subprocess.run(
            [sys.executable, "-c", "from core.train.environment import probe_report; probe_report()"],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            env=env,
            cwd=repo,
        )
    except subprocess.TimeoutExpired:
        return {"bfloat16_usable": False, "reason": f"the probe took over {PROBE_TIMEOUT_S // 60} minutes"}
    if done.returncode != 0:
        reason = (
            f"the probe crashed ({signal.Signals(-done.returncode).name})"
            if done.returncode < 0
            else f"the probe failed (exit {done.returncode})"
        )
        log.info("precision probe output: %s", done.stderr[-2000:])
        return {"bfloat16_usable": False, "reason": reason}
    try:
        times = json.loads(done.stdout.strip().splitlines()[-1])
        return {
            "float32_steps": [float(t) for t in times["float32_steps"]],
            "bfloat16_steps": [float(t) for t in times["bfloat16_steps"]],
            "bfloat16_usable": True,
        }
    except (ValueError, IndexError, KeyError, TypeError):
        return {"bfloat16_usable": False, "reason": "the probe printed no result"}


def machine_key(cpu: str, tensorflow: str) -> str:
    """The key of a machine's decision in the record file: the CPU model and the TensorFlow version.

    >>> machine_key("AMD EPYC [avx512_bf16]", "2.21.0")
    'AMD EPYC [avx512_bf16] · TensorFlow 2.21.0'
    """
    return f"{cpu} · TensorFlow {tensorflow}"


def record_paths(cache_dir: Path | None = None) -> list[Path]:
    """Where decisions are kept: the per-machine cache first, then ``cache_dir`` (used when the first is not
    writable, e.g. a worker without a home folder).

    >>> [p.name for p in record_paths(Path("/data/cache"))][-1]
    'precision-probe-v3.json'
    """
    folders = [folder for folder in (machine_cache_dir(), cache_dir) if folder is not None]
    return list(dict.fromkeys(Path(folder) / PROBE_FILE for folder in folders))


def _read_records(path: Path) -> dict[str, dict]:
    """The decisions in one record file, by :func:`machine_key`; an unreadable file reads as none (logged)."""
    if not path.is_file():
        return {}
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("the precision record %s cannot be read (%s): it will be measured again", path, exc)
        return {}
    machines = found.get("machines") if isinstance(found, dict) else None
    return {key: value for key, value in (machines or {}).items() if isinstance(value, dict)}


def remembered_precision(cache_dir: Path | None = None) -> dict | None:
    """The remembered *auto* precision decision for this CPU and TensorFlow version, without running TensorFlow.

    Parameters
    ----------
    cache_dir : Path, optional
        The data root's cache folder, looked in after the per-machine one (:func:`record_paths`).

    Returns
    -------
    dict or None
        The record (``decision``, ``bfloat16_usable``, ``bfloat16_faster``, ``float32_s``, ``bfloat16_s``,
        ``speed_ratio``, ``margin``, ``measured``, ``cpu``, ``tensorflow``, ``reason`` …) plus ``record_file``;
        a CPU without bfloat16 instructions needs no measurement and gets a record saying so; None when this
        machine has not been measured yet (or was measured with another CPU or TensorFlow version).

    Examples
    --------
    >>> found = remembered_precision(Path("/nowhere"))
    >>> found is None or found["decision"] in ("float32", "bfloat16")
    True
    """
    cpu, tensorflow = cpu_model(), tensorflow_version()
    if not cpu_supports_bfloat16():
        return {
            "decision": "float32",
            "bfloat16_usable": False,
            "bfloat16_faster": False,
            "reason": "no bfloat16 instructions",
            "cpu": cpu,
            "tensorflow": tensorflow,
        }
    key = machine_key(cpu, tensorflow)
    for path in record_paths(cache_dir):
        record = _read_records(path).get(key)
        if (
            record
            and record.get("cpu") == cpu
            and record.get("tensorflow") == tensorflow
            and "bfloat16_faster" in record
        ):
            return {**record, "record_file": str(path)}
    return None


def _remember(record: dict, cache_dir: Path | None) -> Path | None:
    """Add ``record`` to the first record file that can be written (atomically); the path, or None."""
    key = machine_key(record["cpu"], record["tensorflow"])
    for path in record_paths(cache_dir):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            machines = {**_read_records(path), key: record}
            partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            partial.write_text(json.dumps({"version": 3, "machines": machines}, indent=1), encoding="utf-8")
            os.replace(partial, path)
            return path
        except OSError as exc:
            log.warning("the precision decision cannot be saved in %s (%s)", path, exc)
    return None


def measure_precision() -> dict:
    """Run the probe now and return its record; nothing is remembered.

    About 30 s on a 2-core CPU: starting TensorFlow, building and tracing both models, then 13 s of timed steps.
    """
    cpu, tensorflow = cpu_model(), tensorflow_version()
    probe = _run_probe()
    record = {
        "cpu": cpu,
        "tensorflow": tensorflow,
        "host": platform.node(),
        "measured": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "step": f"{PROBE_MODEL['name']} {PROBE_MODEL['base_filters']} filters, depth {PROBE_MODEL['depth']}, "
        f"batch {PROBE_BATCH[0]} of {PROBE_BATCH[1]}×{PROBE_BATCH[2]}×{PROBE_BATCH[3]}, "
        f"median of {PROBE_STEPS} steps after {PROBE_WARMUP} warm-up",
        "bfloat16_usable": bool(probe["bfloat16_usable"]),
    }
    if probe["bfloat16_usable"]:
        record.update(summarise_probe(probe["float32_steps"], probe["bfloat16_steps"]))
    else:
        record.update(bfloat16_faster=False, decision="float32", reason=probe["reason"])
    return record


def precision_probe(cache_dir: Path | None = None) -> dict:
    """Whether bfloat16 works on this CPU and trains faster than float32: measured once per machine, remembered.

    CPUs with AMX gain about 3×; CPUs with only AVX-512 BF16 can be slower, hence a measurement
    (:func:`measure_precision`). The answer is looked up and saved as :func:`remembered_precision` and
    :func:`record_paths` describe; a CPU without bfloat16 instructions is not measured.
    """
    found = remembered_precision(cache_dir)
    if found is not None:
        return found
    record = measure_precision()
    saved = _remember(record, cache_dir)
    log.info("precision probe (%s): %s", saved or "not saved", record)
    return {**record, "record_file": str(saved) if saved else None}


def bfloat16_is_faster(cache_dir: Path | None = None) -> bool:
    """Whether *auto* picks bfloat16 on this CPU (see :func:`precision_probe`)."""
    return bool(precision_probe(cache_dir)["bfloat16_faster"])


def auto_precision_note(record: dict | None) -> str:
    """One sentence for the Train page: what *auto* precision means on this machine's CPU.

    >>> auto_precision_note({"decision": "float32", "bfloat16_usable": True, "speed_ratio": 0.9,
    ...                      "margin": 0.15, "measured": "2026-12-02T10:00:00+00:00"})
    'auto on this machine: float32 (bfloat16 measured 0.90× the speed of float32 on 2026-12-02; it needs 1.15×).'
    >>> auto_precision_note({"decision": "bfloat16", "bfloat16_usable": True, "speed_ratio": 2.8,
    ...                      "margin": 0.15, "measured": "2026-12-02T10:00:00+00:00"})
    'auto on this machine: bfloat16 (measured 2.80× the speed of float32 on 2026-12-02).'
    >>> auto_precision_note({"decision": "float32", "bfloat16_usable": False, "reason": "no bfloat16 instructions"})
    'auto on this machine: float32 (bfloat16 is not used here: no bfloat16 instructions).'
    >>> auto_precision_note(None)
    'auto: measured at the first training on this machine (float32 against bfloat16, about 30 s); float16 on a GPU.'
    """
    if record is None:
        return (
            "auto: measured at the first training on this machine (float32 against bfloat16, about 30 s); "
            "float16 on a GPU."
        )
    when = f" on {record['measured'][:10]}" if record.get("measured") else ""
    if not record.get("bfloat16_usable"):
        return f"auto on this machine: float32 (bfloat16 is not used here: {record.get('reason', 'unknown')}{when})."
    ratio = float(record.get("speed_ratio") or 0.0)
    if record.get("decision") == "bfloat16":
        return f"auto on this machine: bfloat16 (measured {ratio:.2f}× the speed of float32{when})."
    needed = 1 + float(record.get("margin", BFLOAT16_MARGIN))
    return (
        f"auto on this machine: float32 (bfloat16 measured {ratio:.2f}× the speed of float32{when}; "
        f"it needs {needed:.2f}×)."
    )


@dataclass(frozen=True)
class Environment:
    device: str
    precision: str
    threads: int


def configure(
    requested_precision: str = "auto",
    threads: int = 0,
    seed: int | None = None,
    deterministic: bool = False,
    cache_dir: Path | None = None,
) -> Environment:
    """Configure TensorFlow/Keras for this process (call once, before building models).

    ``cache_dir`` (the data root's ``cache/``) is where the precision decision is kept when the per-machine
    cache folder cannot be written (:func:`record_paths`).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    cores = threads or os.cpu_count() or 1
    try:
        tf.config.threading.set_intra_op_parallelism_threads(cores)
        tf.config.threading.set_inter_op_parallelism_threads(2)
    except RuntimeError:  # already initialised (e.g. a second run in the same process): keep what is set
        log.debug("TensorFlow threads were already configured")
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        device = f"GPU: {details.get('device_name', gpus[0].name)}" + (f" (+{len(gpus) - 1})" if len(gpus) > 1 else "")
    else:
        device = f"CPU: {plural(cores, 'thread')}"
    probe = precision_probe(cache_dir) if requested_precision in ("auto", "bfloat16") and not gpus else None
    precision = choose_precision(requested_precision, bool(gpus), bool(probe and probe["bfloat16_faster"]))
    if probe is not None and requested_precision == "auto":
        log.info("%s Decision kept in %s.", auto_precision_note(probe), probe.get("record_file") or "no file")
    if precision == "bfloat16" and probe is not None and not probe["bfloat16_usable"]:
        log.warning(
            "bfloat16 was asked for but does not work on this CPU (%s): training in float32", probe.get("reason")
        )
        precision = "float32"
    keras.mixed_precision.set_global_policy("float32" if precision == "float32" else f"mixed_{precision}")
    if seed is not None:
        keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    log.info("TensorFlow %s on %s, precision %s", tf.__version__, device, precision)
    return Environment(device, precision, cores)
