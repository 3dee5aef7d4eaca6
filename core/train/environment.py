"""TensorFlow set up for this machine: threads, device, mixed precision, seeds. Imported by workers only."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from core.text import plural

log = logging.getLogger(__name__)


def cpu_supports_bfloat16() -> bool:
    """True when the CPU has native bfloat16 arithmetic (AVX-512 BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


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


def _probe_step_time(policy: str) -> float:
    """Seconds per training step of a small U-Net under ``policy`` (after warm-up).

    A real U-Net, not a plain convolution stack: on some CPUs only certain bfloat16 kernels
    (e.g. transposed convolutions) hit the instructions the CPU refuses.
    """
    import keras
    import numpy as np

    from core.models.config import ModelConfig
    from core.models.registry import build_model

    keras.mixed_precision.set_global_policy(policy)
    model = build_model(ModelConfig(name="unet", base_filters=8, depth=2), 1)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    data = np.random.default_rng(0).random((4, 128, 128, 1), dtype=np.float32)
    target = (data > 0.5).astype(np.float32)
    for _ in range(2):
        model.train_on_batch(data, target)
    started = time.perf_counter()
    for _ in range(5):
        model.train_on_batch(data, target)
    return (time.perf_counter() - started) / 5


def probe_report() -> None:
    """Entry point of the probe's child process: print the step times of both precisions as JSON."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print(json.dumps({"float32_s": _probe_step_time("float32"), "bfloat16_s": _probe_step_time("mixed_bfloat16")}))


def _run_probe() -> dict:
    """Time both precisions in a child process.

    Some machines list bfloat16/AMX instructions that the (virtual) CPU then refuses: TensorFlow
    dies with "illegal instruction". In a child, that crash only means "bfloat16 unusable here".
    """
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    try:
        done = subprocess.run([sys.executable, "-c", "from core.train.environment import probe_report; "
                               "probe_report()"], capture_output=True, text=True, timeout=300, env=env, cwd=repo)
    except subprocess.TimeoutExpired:
        return {"bfloat16_usable": False, "reason": "the probe took over 5 minutes"}
    if done.returncode != 0:
        reason = (f"the probe crashed ({signal.Signals(-done.returncode).name})" if done.returncode < 0
                  else f"the probe failed (exit {done.returncode})")
        return {"bfloat16_usable": False, "reason": reason}
    try:
        times = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"bfloat16_usable": False, "reason": "the probe printed no result"}
    return {**times, "bfloat16_usable": True}


def precision_probe(cache_dir: Path | None) -> dict:
    """Whether bfloat16 works on this CPU and trains faster than float32: measured once, remembered in the cache.

    CPUs with AMX gain about 3×; CPUs with only AVX-512 BF16 can be slower, hence a measurement.
    """
    if not cpu_supports_bfloat16():
        return {"bfloat16_usable": False, "bfloat16_faster": False, "reason": "no bfloat16 instructions"}
    record = cache_dir / "precision-probe-v2.json" if cache_dir else None
    if record and record.is_file():
        try:
            found = json.loads(record.read_text())
            if "bfloat16_faster" in found:
                return found
        except (OSError, ValueError):
            pass
    result = _run_probe()
    result["bfloat16_faster"] = bool(result["bfloat16_usable"] and result["bfloat16_s"] * 1.15 < result["float32_s"])
    log.info("precision probe: %s", result)
    if record:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(result))
    return result


def bfloat16_is_faster(cache_dir: Path | None) -> bool:
    return bool(precision_probe(cache_dir)["bfloat16_faster"])


@dataclass(frozen=True)
class Environment:
    device: str
    precision: str
    threads: int


def configure(requested_precision: str = "auto", threads: int = 0, seed: int | None = None,
              deterministic: bool = False, cache_dir: Path | None = None) -> Environment:
    """Configure TensorFlow/Keras for this process (call once, before building models)."""
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
    fast_bf16 = requested_precision == "auto" and not gpus and bfloat16_is_faster(cache_dir)
    precision = choose_precision(requested_precision, bool(gpus), fast_bf16)
    if precision == "bfloat16" and not gpus:
        probe = precision_probe(cache_dir)
        if not probe["bfloat16_usable"]:
            log.warning("bfloat16 was asked for but does not work on this CPU (%s): training in float32",
                        probe.get("reason"))
            precision = "float32"
    keras.mixed_precision.set_global_policy("float32" if precision == "float32" else f"mixed_{precision}")
    if seed is not None:
        keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    log.info("TensorFlow %s on %s, precision %s", tf.__version__, device, precision)
    return Environment(device, precision, cores)
