"""Augmentation speed on real 512×512 images, against albumentations 2.0.8 as the peer, and against training.

Figures (all measured in this run):
- throughput of the full pipeline with every geometric transform on (p = 1), grey and RGB 512×512, on one
  core and with two worker processes; the same pipeline written with albumentations is the peer (ratio);
- preview latency in chromium: a slider moved → the 8-sample grid shows the change; baseline: computing
  those 8 samples and their pictures without a browser;
- augmentation throughput at the default preset divided by a U-Net's training throughput on this machine
  (above 1: training never waits for augmentation).
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import cv2
import numpy as np

from core.augment.config import GEOMETRIC, AugmentConfig
from core.augment.pipeline import AugmentPipeline
from core.augment.presets import DEFAULT_PRESET, BUILTIN
from core.io import read_image
from tests.bench.common import Results, median
from tests.e2e.server import SHARED, DashboardServer, launch_chromium

SAMPLES = 60
ALL_GEOMETRIC = AugmentConfig.from_dict(
    {
        **{name: {"enabled": True, "p": 1.0} for name in GEOMETRIC},
        "scale": {"enabled": True, "p": 1.0, "min_factor": 0.8, "max_factor": 1.2},
        "elastic": {"enabled": True, "p": 1.0, "alpha": 300.0, "sigma": 12.0},
    }
)


def _pairs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    phase = SHARED / "datasets" / "usiigaci_phase_contrast" / "train"
    stem = sorted(p.name for p in (phase / "images").iterdir())[0]
    blood = SHARED / "datasets" / "blood_cells_fullsize" / "test"
    slide = sorted(p.name for p in (blood / "images").iterdir())[0]
    rgb, rgb_mask = read_image(blood / "images" / slide), read_image(blood / "masks" / slide)
    return {
        "grey 512×512": (read_image(phase / "images" / stem), read_image(phase / "masks" / stem)),
        "RGB 512×512": (np.ascontiguousarray(rgb[300:812, 400:912]), np.ascontiguousarray(rgb_mask[300:812, 400:912])),
    }


def _albumentations():
    import albumentations as A

    reflect = cv2.BORDER_REFLECT_101
    return A.Compose(
        [
            A.HorizontalFlip(p=1),
            A.VerticalFlip(p=1),
            A.RandomRotate90(p=1),
            A.Affine(
                rotate=(-180, 180),
                scale=(0.8, 1.2),
                shear=(-5.7, 5.7),
                translate_percent=(-0.1, 0.1),
                border_mode=reflect,
                p=1,
            ),
            A.ElasticTransform(alpha=300, sigma=12, border_mode=reflect, p=1),
            A.GridDistortion(distort_limit=0.1, border_mode=reflect, p=1),
            A.OpticalDistortion(distort_limit=(0.2, 0.2), border_mode=reflect, p=1),
            A.OpticalDistortion(distort_limit=(-0.2, -0.2), border_mode=reflect, p=1),
        ],
        seed=0,
    )


def _run_ours(job) -> float:
    image, mask, count, config_dict = job
    cv2.setNumThreads(1)
    pipeline = AugmentPipeline(AugmentConfig.from_dict(config_dict))
    started = time.perf_counter()
    for index in range(count):
        pipeline.sample(image, mask, 0, index)
    return time.perf_counter() - started


def _run_albumentations(job) -> float:
    image, mask, count = job
    cv2.setNumThreads(1)
    transform = _albumentations()
    started = time.perf_counter()
    for _ in range(count):
        transform(image=image, mask=mask)
    return time.perf_counter() - started


def _throughput(runner, jobs_args, workers: int) -> float:
    """Samples per second: one process, or ``workers`` processes each doing its share."""
    if workers == 1:
        return SAMPLES / runner(jobs_args(SAMPLES))
    share = SAMPLES // workers
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pool.map(runner, [jobs_args(2)] * workers)  # start-up and imports out of the timing
        started = time.perf_counter()
        pool.map(runner, [jobs_args(share)] * workers)
        return share * workers / (time.perf_counter() - started)


def throughput(results: Results, repeat: int) -> None:
    config = ALL_GEOMETRIC.to_dict()
    for label, (image, mask) in _pairs().items():
        for workers in (1, 2):
            ours = [_throughput(_run_ours, lambda n: (image, mask, n, config), workers) for _ in range(repeat)]
            peer = [_throughput(_run_albumentations, lambda n: (image, mask, n), workers) for _ in range(repeat)]
            where = "1 core" if workers == 1 else "2 worker processes"
            peer_figure = results.add(
                "augment",
                f"{label}, all geometric, {where}: albumentations 2.0.8",
                median(peer),
                "samples/s",
                samples=peer,
            )
            results.add(
                "augment",
                f"{label}, all geometric, {where}: CellSeg pipeline",
                median(ours),
                "samples/s",
                baseline=peer_figure,
                samples=ours,
                note="ratio > 1: faster than the peer",
            )


def _unet_images_per_second() -> float:
    """Training throughput of a plain U-Net (base 16, depth 4, 256², batch 8, Adam, float32) on this machine."""
    import keras

    def block(x, filters):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        return keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)

    inputs = keras.Input((256, 256, 1))
    skips, x = [], inputs
    for level in range(4):
        x = block(x, 16 * 2**level)
        skips.append(x)
        x = keras.layers.MaxPooling2D()(x)
    x = block(x, 256)
    for level in reversed(range(4)):
        x = keras.layers.Conv2DTranspose(16 * 2**level, 2, strides=2, padding="same")(x)
        x = block(keras.layers.Concatenate()([x, skips[level]]), 16 * 2**level)
    model = keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid")(x))
    model.compile(optimizer="adam", loss="binary_crossentropy")
    rng = np.random.default_rng(0)
    images = rng.random((8, 256, 256, 1), dtype=np.float32)
    masks = (rng.random((8, 256, 256, 1)) > 0.7).astype(np.float32)
    for _ in range(2):
        model.train_on_batch(images, masks)
    steps = 6
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, masks)
    return steps * 8 / (time.perf_counter() - started)


def _train_job(_) -> float:
    return _unet_images_per_second()


def against_training(results: Results) -> None:
    image, mask = _pairs()["grey 512×512"]
    patch, patch_mask = np.ascontiguousarray(image[:256, :256]), np.ascontiguousarray(mask[:256, :256])
    aug = _throughput(_run_ours, lambda n: (patch, patch_mask, n, BUILTIN[DEFAULT_PRESET]), 1)
    augment_figure = results.add(
        "augment", f"default preset ({DEFAULT_PRESET}), 256×256 patches, 1 core", aug, "samples/s"
    )
    with multiprocessing.get_context("spawn").Pool(1) as pool:  # TensorFlow stays out of this process
        train = pool.map(_train_job, [0])[0]
    train_figure = results.add(
        "augment",
        "U-Net training (base 16, depth 4, 256², batch 8, float32)",
        train,
        "images/s",
        note="stand-in for the training engine's default model",
    )
    results.add(
        "augment",
        "augmentation throughput ÷ training throughput",
        aug / train,
        "×",
        note=f"augmentation {augment_figure.value:.0f}/s on one core vs training "
        f"{train_figure.value:.1f}/s: training never waits when > 1",
    )


def preview_latency(results: Results, workdir: Path, repeat: int) -> None:
    """Slider moved → all 8 previews show the change, in chromium, on 512×512 phase-contrast tiles."""
    from playwright.sync_api import sync_playwright

    from core.augment.preview import make_samples, sample_picture
    from core.config import ImportOptions
    from core.datasets.importer import import_dataset
    from tests.bench.common import data_settings
    from tests.e2e.ui import wait_idle

    root = workdir / "augment-root"
    settings = data_settings(root)
    import_dataset(SHARED / "datasets" / "usiigaci_phase_contrast", ImportOptions(name="phase"), settings)
    (root / ".sample-imported").write_text("skip the sample: this data root shows one dataset\n")
    image, mask = _pairs()["grey 512×512"]
    rotation_on = AugmentConfig.from_dict({**BUILTIN[DEFAULT_PRESET], "rotate": {"enabled": True, "p": 1.0}})
    pipeline = AugmentPipeline(rotation_on)
    compute = []
    for _ in range(repeat):
        started = time.perf_counter()
        for sample in make_samples(pipeline, image, mask, 8, 0):
            sample_picture(sample.image, sample.mask)
        compute.append(time.perf_counter() - started)
    baseline = results.add(
        "augment", "preview: 8 samples of 512×512 computed and drawn, no browser", median(compute), "s", samples=compute
    )
    js = (
        "() => { const cells = [...document.querySelectorAll('[data-testid=stMain] [data-testid=stImage]')];"
        " const imgs = cells.map(c => c.querySelector('img'));"
        " return cells.length === 9 && imgs.every(i => i && i.complete && i.naturalWidth > 0) &&"
        " cells.slice(1).every(c => c.innerText.includes('rotate') === WANT); }"
    )
    timings = []
    with (
        DashboardServer(data_root=root, import_roots=(workdir,), log_path=workdir / "augment.log") as server,
        sync_playwright() as playwright,
    ):
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{server.url}/augment")
        page.get_by_text("original", exact=True).wait_for(timeout=60_000)
        page.get_by_text("Rotation · off").click()
        page.get_by_text("Use it", exact=True).filter(visible=True).first.click()
        wait_idle(page)
        thumb = page.locator("[data-testid=stSlider]").filter(has_text="How often").filter(visible=True).first
        for k in range(2 * repeat):
            want = k % 2 == 0
            thumb.locator("input").first.focus()
            started = time.perf_counter()
            thumb.locator("input").first.press("End" if want else "Home")
            page.wait_for_function(js.replace("WANT", "true" if want else "false"), timeout=60_000)
            timings.append(time.perf_counter() - started)
            wait_idle(page)
        browser.close()
    results.add(
        "augment",
        "preview in chromium: slider moved → 8 samples of 512×512 updated",
        median(timings),
        "s",
        baseline=baseline,
        samples=timings,
        note="includes the rerun, image transfer and browser decoding",
    )


def run(results: Results, workdir: Path, repeat: int = 3) -> None:
    print("augment: throughput against albumentations", flush=True)
    throughput(results, repeat)
    print("augment: against training throughput", flush=True)
    against_training(results)
    print("augment: preview latency in chromium", flush=True)
    preview_latency(results, workdir, repeat)
