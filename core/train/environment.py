"""TensorFlow set up for this machine: threads, device, mixed precision, seeds. Imported by workers only."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

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
    """Seconds per training step of a small convolution stack under ``policy`` (after warm-up)."""
    import keras
    import numpy as np

    keras.mixed_precision.set_global_policy(policy)
    inputs = keras.Input((128, 128, 1))
    x = inputs
    for _ in range(4):
        x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    model = keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid", dtype="float32")(x))
    model.compile(optimizer="adam", loss="binary_crossentropy")
    data = np.random.default_rng(0).random((4, 128, 128, 1), dtype=np.float32)
    for _ in range(2):
        model.train_on_batch(data, data)
    started = time.perf_counter()
    for _ in range(5):
        model.train_on_batch(data, data)
    return (time.perf_counter() - started) / 5


def bfloat16_is_faster(cache_dir: Path | None) -> bool:
    """Measure once per machine whether bfloat16 trains faster than float32 here (remembered in the cache).

    CPUs with AMX gain about 3×; CPUs with only AVX-512 BF16 can be slower, hence a measurement.
    """
    if not cpu_supports_bfloat16():
        return False
    record = cache_dir / "precision-probe.json" if cache_dir else None
    if record and record.is_file():
        try:
            return bool(json.loads(record.read_text())["bfloat16_faster"])
        except (OSError, ValueError, KeyError):
            pass
    float32 = _probe_step_time("float32")
    bfloat16 = _probe_step_time("mixed_bfloat16")
    faster = bfloat16 * 1.15 < float32
    log.info("precision probe: float32 %.3f s/step, bfloat16 %.3f s/step → %s", float32, bfloat16,
             "bfloat16" if faster else "float32")
    if record:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"float32_s": float32, "bfloat16_s": bfloat16, "bfloat16_faster": faster}))
    return faster


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
        device = f"CPU: {cores} thread(s)"
    fast_bf16 = requested_precision == "auto" and not gpus and bfloat16_is_faster(cache_dir)
    precision = choose_precision(requested_precision, bool(gpus), fast_bf16)
    keras.mixed_precision.set_global_policy("float32" if precision == "float32" else f"mixed_{precision}")
    if seed is not None:
        keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    log.info("TensorFlow %s on %s, precision %s", tf.__version__, device, precision)
    return Environment(device, precision, cores)
