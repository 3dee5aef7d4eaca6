"""Importing time-lapse videos: a row per frame with its sequence and frame, ids kept, sequences kept whole."""

import json
import zipfile
from collections import defaultdict

import cv2
import numpy as np
import pytest
import tifffile

from core.cli import main
from core.config import ImportOptions, SplitOptions
from core.datasets.importer import check_source, import_dataset
from core.datasets.layouts import detect_layout, scan_source
from core.datasets.manifest import read_manifest
from core.datasets.report import ImportFailed
from core.datasets.splits import split_counts
from core.io import read_image, write_png
from core.masks.kinds import count_objects
from core.timelapse.video_files import (
    iter_frames,
    list_frame_files,
    natural_key,
    probe_video,
    read_frame,
)
from core.timelapse.video_pairs import check_video_pair
from tests.helpers import tree_fingerprint

USIIGACI = "datasets/usiigaci_t98g_timelapse"


def moving_discs(seed: int, frames: int = 5, size: int = 32, cells: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A uint16 video of discs drifting a pixel or two per frame, and its label video; ids are 10, 20, …
    (not 1..N), so renumbering would show."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(8, size - 8, (cells, 2))
    steps = rng.integers(-1, 2, (cells, 2))
    labels = np.zeros((frames, size, size), np.uint16)
    for t in range(frames):
        for k in range(cells):
            centre = np.clip(starts[k] + steps[k] * t, 5, size - 6)
            cv2.circle(labels[t], (int(centre[0]), int(centre[1])), 4, 10 * (k + 1), -1)
    images = np.where(labels > 0, 40000, 3000) + rng.integers(0, 2000, labels.shape) + np.arange(frames)[:, None, None]
    return images.astype(np.uint16), labels


def write_stack(path, video):
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, video, photometric="minisblack", metadata={"axes": "TYX"})  # never taken as RGB


def split_stacks(root, layout=(("train", 2), ("valid", 1), ("test", 1))):
    """``{train,valid,test}/input/<seq>.tif`` + ``labels/<seq>.tif``."""
    videos, k = {}, 0
    for split, n in layout:
        for _ in range(n):
            name = f"seq{k}"
            videos[name] = moving_discs(k, frames=4 + k % 3)
            write_stack(root / split / "input" / f"{name}.tif", videos[name][0])
            write_stack(root / split / "labels" / f"{name}.tif", videos[name][1])
            k += 1
    return root, videos


def flat_stacks(root, n=3, frames=5):
    """``input/<seq>.tif`` + ``labels/<seq>.tif``, no split folders."""
    videos = {f"clip{k}": moving_discs(10 + k, frames=frames) for k in range(n)}
    for name, (images, labels) in videos.items():
        write_stack(root / "input" / f"{name}.tif", images)
        write_stack(root / "labels" / f"{name}.tif", labels)
    return root, videos


def frame_folders(root, n=2, frames=6):
    """``input/<seq>/f<k>.png`` + ``labels/<seq>/man_seg<k>.tif``; the numbers go past 10, so only a natural
    sort keeps the frames in order."""
    videos = {f"movie{k}": moving_discs(20 + k, frames=frames) for k in range(n)}
    for name, (images, labels) in videos.items():
        for t in range(frames):
            write_png(root / "input" / name / f"f{3 * t}.png", images[t])
            (root / "labels" / name).mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(root / "labels" / name / f"man_seg{3 * t}.tif", labels[t])
    return root, videos


def zipped(root):
    """A zip of flat stacks inside a top folder, as a browser upload arrives."""
    folder, videos = flat_stacks(root / "unpacked" / "my videos")
    archive = root / "videos.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in folder.rglob("*.tif"):
            zf.write(path, path.relative_to(root / "unpacked").as_posix())
    return archive, videos


def by_sequence(rows):
    grouped = defaultdict(list)
    for row in rows:
        grouped[row["sequence"]].append(row)
    return grouped


@pytest.mark.parametrize("builder", [split_stacks, flat_stacks, frame_folders, zipped])
def test_every_source_form_becomes_a_row_per_frame(tmp_path, settings, builder):
    source, videos = builder(tmp_path / "src")
    before = tree_fingerprint(source.parent if source.is_file() else source)
    result = import_dataset(source, ImportOptions(name="ds"), settings)
    assert tree_fingerprint(source.parent if source.is_file() else source) == before, "sources are only read"
    manifest = read_manifest(result.path)
    assert manifest["layout"] == "timelapse"
    grouped = by_sequence(manifest["images"])
    assert sorted(grouped) == sorted(videos)
    for name, rows in grouped.items():
        images, labels = videos[name]
        assert [r["frame"] for r in rows] == list(range(len(images))), "frame order kept"
        assert [r["stem"] for r in rows] == [f"{name}_t{t:04d}" for t in range(len(images))]
        assert len({r["split"] for r in rows}) == 1, "a sequence is never split"
        for t, row in enumerate(rows):
            image = read_image(result.path / row["image"])
            assert row["image"] == f"{row['split']}/images/{name}_t{t:04d}.png"
            assert image.dtype == np.uint16 and row["dtype"] == "uint16" and np.array_equal(image, images[t])
            instances = read_image(result.path / row["instances"])
            assert np.array_equal(instances, labels[t]), "ids are track ids: kept exactly, never renumbered"
            assert row["object_count"] == 3 and row["mask_kind"] == "instances"
            assert set(np.unique(read_image(result.path / row["mask"]))) == {0, 255}
    assert sum(manifest["counts"].values()) == len(manifest["images"])
    assert not list(settings.datasets_dir.glob(".staging-*"))


@pytest.mark.parametrize("builder", [split_stacks, flat_stacks, frame_folders])
def test_videos_are_recognised_and_scanned_as_sequences(tmp_path, builder):
    root, videos = builder(tmp_path / "src")
    assert detect_layout(root) == "timelapse"
    scan = scan_source(root)
    assert scan.layout == "timelapse" and sorted(p.stem for p in scan.pairs) == sorted(videos)
    assert scan_source(root, "timelapse").layout == "timelapse"
    assert not [f for f in scan.findings if f.severity == "error"]


def test_split_folders_of_the_source_are_kept(tmp_path, settings):
    source, _ = split_stacks(tmp_path / "src")
    manifest = read_manifest(import_dataset(source, ImportOptions(name="kept"), settings).path)
    splits = {name: rows[0]["split"] for name, rows in by_sequence(manifest["images"]).items()}
    assert splits == {"seq0": "train", "seq1": "train", "seq2": "valid", "seq3": "test"}
    assert manifest["split_from"] == "source"


@pytest.mark.parametrize(
    "n, ratios, seed",
    [
        (7, (0.7, 0.15, 0.15), 0),
        (7, (0.7, 0.15, 0.15), 3),
        (5, (0.6, 0.2, 0.2), 1),
        (4, (0.5, 0.25, 0.25), 9),
        (2, (0.7, 0.15, 0.15), 0),
        (6, (1.0, 0.0, 0.0), 2),
    ],
)
def test_whole_sequences_are_shared_out_with_the_ratios_and_seed(tmp_path, settings, n, ratios, seed):
    source, _ = flat_stacks(tmp_path / "src", n=n, frames=4)
    split = SplitOptions(*ratios, seed=seed)
    first = read_manifest(import_dataset(source, ImportOptions(name="a", split=split), settings).path)
    again = read_manifest(import_dataset(source, ImportOptions(name="b", split=split), settings).path)
    grouped = by_sequence(first["images"])
    assert all(len({r["split"] for r in rows}) == 1 for rows in grouped.values())
    per_split = defaultdict(int)
    for rows in grouped.values():
        per_split[rows[0]["split"]] += 1
    assert {s: per_split[s] for s in ("train", "valid", "test")} == split_counts(n, split), "ratios count sequences"
    assert [(r["stem"], r["split"]) for r in first["images"]] == [(r["stem"], r["split"]) for r in again["images"]]
    assert first["split_from"] == "seeded" and first["split"]["seed"] == seed


def _messages(report, code):
    return [f"{f.file}: {f.message}" for f in report.findings if f.code == code]


def test_frame_count_mismatch_is_an_error_naming_both_files_and_counts(tmp_path, settings):
    source, videos = flat_stacks(tmp_path / "src", n=2)
    write_stack(source / "labels" / "clip1.tif", videos["clip1"][1][:3])
    with pytest.raises(ImportFailed) as failed:
        import_dataset(source, ImportOptions(name="bad"), settings)
    assert _messages(failed.value.report, "frame-count-mismatch") == [
        "input/clip1.tif: has 5 frames but its labels labels/clip1.tif have 3."
    ]
    assert not settings.datasets_dir.exists() or not list(settings.datasets_dir.iterdir())
    kept = import_dataset(source, ImportOptions(name="rest", skip_invalid=True), settings)
    assert {r["sequence"] for r in read_manifest(kept.path)["images"]} == {"clip0"}, "the bad sequence left out whole"


def test_frame_sizes_that_differ_are_errors(tmp_path, settings):
    source, videos = flat_stacks(tmp_path / "src", n=1)
    write_stack(source / "labels" / "clip0.tif", np.zeros((5, 32, 40), np.uint16))
    report = check_source(source, ImportOptions(name="c"), settings)
    assert _messages(report, "frame-size-mismatch") == [
        "labels/clip0.tif: has frames of 40×32 but its video input/clip0.tif has frames of 32×32."
    ]
    folders, _ = frame_folders(tmp_path / "folders", n=1)
    write_png(folders / "input" / "movie0" / "f9.png", np.zeros((20, 32), np.uint16))
    report = check_source(folders, ImportOptions(name="c"), settings)
    assert not report.ok
    assert any(
        "input/movie0/f9.png: frame 3 is 32×20 but frame 0 is 32×32" in m
        for m in _messages(report, "frame-size-mismatch")
    )


def test_a_single_frame_is_a_still_sequence_of_one_with_a_warning(tmp_path, settings):
    source, videos = flat_stacks(tmp_path / "src", n=2)
    images, labels = moving_discs(5, frames=1)
    tifffile.imwrite(source / "input" / "still.tif", images[0])
    tifffile.imwrite(source / "labels" / "still.tif", labels[0])
    result = import_dataset(source, ImportOptions(name="s", layout="timelapse"), settings)
    assert _messages(result.report, "single-frame") == [
        "input/still.tif: holds a single frame: imported as a still sequence of 1."
    ]
    rows = by_sequence(read_manifest(result.path)["images"])["still"]
    assert [(r["stem"], r["frame"]) for r in rows] == [("still_t0000", 0)]


def test_ids_that_leave_and_come_back_are_a_warning_naming_the_id_and_frames(tmp_path):
    images, labels = moving_discs(1, frames=6)
    labels[2:4][labels[2:4] == 20] = 0  # cell 20 is missed in frames 2 and 3
    write_stack(tmp_path / "a.tif", images)
    write_stack(tmp_path / "a_labels.tif", labels)
    findings = check_video_pair(tmp_path / "a.tif", tmp_path / "a_labels.tif", stem="a")
    jumps = [f for f in findings if f.code == "id-jump"]
    assert [f.severity for f in jumps] == ["warning"]
    assert "id 20 (in frame 1, missing from frame 2 to 3, back in frame 4)" in jumps[0].message
    assert jumps[0].file == "a_labels.tif" and jumps[0].stem == "a"
    assert not [f for f in findings if f.severity == "error"]
    assert any(f.code == "video" and "6 frames of 32×32, uint16 (kept)" in f.message for f in findings)


def test_a_file_that_is_not_a_tiff_is_an_error(tmp_path, settings):
    source, _ = flat_stacks(tmp_path / "src", n=2)
    (source / "input" / "clip1.tif").write_bytes(b"this is not a TIFF at all" * 4)
    report = check_source(source, ImportOptions(name="c", layout="timelapse"), settings)
    errors = [f for f in report.errors if f.file == "input/clip1.tif"]
    assert [f.code for f in errors] == ["unreadable-image"] and "could not be read as a TIFF" in errors[0].message
    assert errors[0].stem == "clip1"


def test_labels_that_are_images_are_refused(tmp_path):
    images, _ = moving_discs(2, frames=4)
    write_stack(tmp_path / "a.tif", images)
    findings = check_video_pair(tmp_path / "a.tif", tmp_path / "a.tif")
    assert [f.code for f in findings if f.severity == "error"] == ["not-a-mask"]


def test_unlabelled_and_binary_videos(tmp_path, settings):
    source, videos = flat_stacks(tmp_path / "src", n=2)
    (source / "labels" / "clip1.tif").unlink()
    with pytest.raises(ImportFailed) as failed:
        import_dataset(source, ImportOptions(name="x"), settings)
    assert _messages(failed.value.report, "missing-mask") == ["input/clip1.tif: has no labels in labels."]
    masks = np.where(videos["clip0"][1] > 0, 255, 0).astype(np.uint8)
    write_stack(source / "labels" / "clip0.tif", masks)
    rows = by_sequence(
        read_manifest(import_dataset(source, ImportOptions(name="y", images_only=True), settings).path)["images"]
    )
    assert {r["label"] for r in rows["clip1"]} == {"unlabelled"} and len(rows["clip1"]) == 5
    assert {(r["mask_kind"], r["has_instances"], r["instances"]) for r in rows["clip0"]} == {("binary", False, None)}
    assert [r["object_count"] for r in rows["clip0"]] == [count_objects(m) for m in masks]  # touching discs: one


def test_frames_are_read_one_at_a_time_in_natural_order(tmp_path):
    folder = tmp_path / "frames"
    for t in (10, 2, 1):
        write_png(folder / f"t{t}.png", np.full((16, 16), t, np.uint8))
    assert [p.name for p in list_frame_files(folder)] == ["t1.png", "t2.png", "t10.png"]
    assert [int(f[0, 0]) for f in iter_frames(folder)] == [1, 2, 10]
    assert sorted(["b10", "b9", "a"], key=natural_key) == ["a", "b9", "b10"]
    images, _ = moving_discs(3, frames=5)
    write_stack(tmp_path / "v.tif", images)
    info = probe_video(tmp_path / "v.tif")
    assert (info.kind, info.n_frames, info.frame_shape, info.dtype) == ("stack", 5, (32, 32), "uint16")
    frames = iter_frames(info)
    assert np.array_equal(next(frames), images[0])  # a generator: the rest is not read yet
    frames.close()
    assert np.array_equal(read_frame(info, 3), images[3])


def test_cli_imports_and_checks_videos(tmp_path, data_env, capsys):
    source, _ = flat_stacks(tmp_path / "src", n=3)
    assert main(["datasets", "import", str(source), "--name", "clips", "--layout", "timelapse", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["imported"] and sum(result["counts"].values()) == 15
    write_stack(source / "labels" / "clip2.tif", np.zeros((2, 32, 32), np.uint16))
    assert main(["datasets", "check", str(source), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert any(f["code"] == "frame-count-mismatch" and "labels/clip2.tif" in f["message"] for f in report["findings"])


def test_the_real_time_lapse_test_split(shared, settings):
    source = shared / USIIGACI / "test"
    result = import_dataset(source, ImportOptions(name="usiigaci-test"), settings)
    manifest = read_manifest(result.path)
    grouped = by_sequence(manifest["images"])
    assert sorted(grouped) == ["usiigaci_t98g_xy01_r2c1"]
    rows = grouped["usiigaci_t98g_xy01_r2c1"]
    assert [r["frame"] for r in rows] == list(range(20))
    assert {(r["width"], r["height"], r["dtype"]) for r in rows} == {(512, 336, "uint16")}
    assert sum(r["object_count"] for r in rows) == 382, "the instances the dataset's README counts"
    assert manifest["pixel_size_um"] == pytest.approx(0.87)
    labels = tifffile.imread(source / "labels" / "usiigaci_t98g_xy01_r2c1.tif", key=7)
    assert np.array_equal(read_image(result.path / rows[7]["instances"]), labels)


def test_the_catalogue_knows_each_frames_video_and_place(tmp_path, settings):
    from core.catalogue import store
    from core.catalogue.datasets import sync_datasets

    source, videos = flat_stacks(tmp_path / "src", n=2, frames=4)
    import_dataset(source, ImportOptions.from_dict({"name": "ds", "layout": "timelapse"}), settings)
    con = store.connect(settings.catalogue_path)
    sync_datasets(con, settings.datasets_dir)
    rows = con.execute("SELECT sequence, frame, stem FROM images ORDER BY sequence, frame").fetchall()
    assert rows == [(name, t, f"{name}_t{t:04d}") for name in sorted(videos) for t in range(4)]


def test_adding_a_video_to_a_dataset_checks_its_name_and_its_frames_names(tmp_path, settings):
    from core.datasets.adding import add_images

    source, videos = flat_stacks(tmp_path / "src", n=2, frames=3)
    import_dataset(source, ImportOptions(name="clips"), settings)
    again = tmp_path / "again"
    write_stack(again / "input" / "clip1.tif", videos["clip1"][0])
    with pytest.raises(ImportFailed) as failed:
        add_images(settings, "clips", again)
    assert [f.code for f in failed.value.report.errors] == ["video-name-taken"]
    assert "its frames would mix with that video's" in failed.value.report.errors[0].message

    new = tmp_path / "new"
    write_stack(new / "input" / "clip9.tif", videos["clip0"][0])
    added = add_images(settings, "clips", new, split="test")
    assert added.added["test"] == 3
    rows = [r for r in read_manifest(settings.datasets_dir / "clips")["images"] if r.get("sequence") == "clip9"]
    assert [(r["frame"], r["split"], r["label"]) for r in rows] == [(t, "test", "unlabelled") for t in range(3)]


def test_a_video_whose_frames_would_take_an_images_name_is_refused(tmp_path, settings):
    from core.datasets.adding import add_images

    stills = tmp_path / "stills"
    write_png(stills / "images" / "movie_t0001.png", np.full((32, 32), 9, np.uint8))
    write_png(stills / "masks" / "movie_t0001.png", np.zeros((32, 32), np.uint8))
    import_dataset(stills, ImportOptions(name="mixed"), settings)
    video = tmp_path / "video"
    write_stack(video / "input" / "movie.tif", moving_discs(5, frames=3)[0])
    with pytest.raises(ImportFailed) as failed:
        add_images(settings, "mixed", video)
    errors = failed.value.report.errors
    assert [(f.code, f.stem) for f in errors] == [("name-taken", "movie_t0001")]
    assert "would be named movie_t0001" in errors[0].message
