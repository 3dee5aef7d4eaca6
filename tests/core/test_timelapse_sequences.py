"""A dataset's time-lapse sequences: grouping rows into videos, loading one, and the ``tracks`` commands.

A tiny hand-built dataset (two sequences of four 24 × 24 frames of moving discs) with answers known by hand,
one dataset made by the importer's ``timelapse`` layout, and one check on the real time-lapse in shared/.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest
import tifffile
from skimage.draw import disk

from core.cli import tracks_cli
from core.config import ImportOptions
from core.datasets.importer import import_dataset
from core.datasets.manifest import read_manifest, write_manifest
from core.io import write_png
from core.timelapse.sequences import SequenceError, cell_counts, check_sequence_rows, dataset_sequences, load_sequence

SIZE = 24
RADIUS = 3
FRAMES = 4
# sequence → split and, per disc id, its centre (row, column) in each frame it is present in
SEQUENCES = {
    "alpha": (
        "train",
        {
            10: {t: (6, 5 + 2 * t) for t in range(FRAMES)},  # 2 px right per frame
            20: {t: (17, 18 - 2 * t) for t in range(FRAMES)},
        },
    ),  # 2 px left per frame
    "beta": (
        "test",
        {
            7: {t: (5 + t, 12) for t in range(FRAMES)},  # 1 px down per frame
            8: {t: (18, 6) for t in (2, 3)},
        },
    ),  # appears in frame 2, stays
}


def disc_frame(centres: dict[int, tuple[int, int]]) -> np.ndarray:
    frame = np.zeros((SIZE, SIZE), np.uint16)
    for cell, centre in centres.items():
        frame[disk(centre, RADIUS, shape=frame.shape)] = cell
    return frame


def label_video(discs: dict[int, dict[int, tuple[int, int]]]) -> np.ndarray:
    return np.stack([disc_frame({c: p[t] for c, p in discs.items() if t in p}) for t in range(FRAMES)])


def image_of(labels: np.ndarray, t: int) -> np.ndarray:
    """A uint16 frame above 8 bits (so a lost depth would show), different in every frame."""
    return (np.where(labels > 0, 40000, 3000) + 100 * t).astype(np.uint16)


def build_dataset(folder, sequences=SEQUENCES, ids=None, pixel_size_um=None, mask_only=()):
    """Write a dataset folder as the importer lays it out: ``<split>/{images,masks,masks_instances}/<stem>.png``
    and ``dataset.json``; one still image without a sequence besides. ``ids[name]`` replaces a sequence's stored
    label video; frames (name, t) in ``mask_only`` get a binary mask and no instances file."""
    rows = []
    for name, (split, discs) in sequences.items():
        video = label_video(discs) if ids is None or name not in ids else ids[name]
        for t in range(FRAMES):
            stem = f"{name}_t{t:04d}"
            write_png(folder / split / "images" / f"{stem}.png", image_of(video[t], t))
            write_png(folder / split / "masks" / f"{stem}.png", np.where(video[t] > 0, 255, 0).astype(np.uint8))
            instances = None
            if (name, t) not in mask_only:
                instances = f"{split}/masks_instances/{stem}.png"
                write_png(folder / instances, video[t])
            rows.append(
                {
                    "stem": stem,
                    "split": split,
                    "image": f"{split}/images/{stem}.png",
                    "mask": f"{split}/masks/{stem}.png",
                    "instances": instances,
                    "has_instances": instances is not None,
                    "width": SIZE,
                    "height": SIZE,
                    "object_count": int(np.count_nonzero(np.unique(video[t]))),
                    "sequence": name,
                    "frame": t,
                }
            )
    still = disc_frame({1: (12, 12)})
    write_png(folder / "train" / "images" / "still.png", image_of(still, 0))
    write_png(folder / "train" / "masks" / "still.png", np.where(still > 0, 255, 0).astype(np.uint8))
    rows.insert(
        1,
        {
            "stem": "still",
            "split": "train",
            "image": "train/images/still.png",
            "mask": "train/masks/still.png",
            "instances": None,
            "has_instances": False,
        },
    )
    rows.reverse()  # the manifest's order is not the frame order: grouping must sort
    manifest = {"format": 1, "name": folder.name, "images": rows}
    if pixel_size_um is not None:
        manifest.update(pixel_size_um=pixel_size_um, pixel_size_source="set by hand")
    write_manifest(folder, manifest)
    return folder


@pytest.fixture
def clips(data_env):
    """The hand-built dataset ``clips``, imported under the test's data root."""
    return build_dataset(data_env.datasets_dir / "clips")


def tracks(capsys, *argv):
    """Run ``tracks …`` through a parser of this group alone; returns (exit status, stdout, stderr)."""
    parser = argparse.ArgumentParser(prog="python -m core")
    tracks_cli.add_commands(parser.add_subparsers(dest="group", required=True))
    args = parser.parse_args(["tracks", *map(str, argv)])
    code = args.handler(args)
    out, err = capsys.readouterr()
    return code, out, err


# --- the library ------------------------------------------------------------------------------------------


def test_rows_are_grouped_by_sequence_in_frame_order(clips):
    grouped = dataset_sequences(clips)
    assert list(grouped) == ["alpha", "beta"], "still images are no video"
    assert [r["stem"] for r in grouped["alpha"]] == [f"alpha_t{t:04d}" for t in range(FRAMES)]
    assert [r["frame"] for r in grouped["beta"]] == list(range(FRAMES))


def test_a_sequence_loads_as_its_videos(clips):
    beta = load_sequence(clips, "beta")
    truth = label_video(SEQUENCES["beta"][1])
    assert (beta.name, beta.split, beta.n_frames, beta.tracked) == ("beta", "test", FRAMES, True)
    assert beta.stems == tuple(f"beta_t{t:04d}" for t in range(FRAMES))
    assert beta.images.shape == (FRAMES, SIZE, SIZE) and beta.images.dtype == np.uint16
    assert np.array_equal(beta.images[3], image_of(truth[3], 3)), "frames as stored, 16 bits kept"
    assert beta.labels.dtype == np.uint16 and np.array_equal(beta.labels, truth), "track ids kept as stored"
    assert beta.pixel_size_um is None
    assert cell_counts(beta.labels).tolist() == [1, 1, 2, 2]
    assert cell_counts(load_sequence(clips, "alpha").labels).tolist() == [2, 2, 2, 2]
    with pytest.raises(ValueError):
        beta.labels[0, 0, 0] = 1  # read-only, as the frozen dataclass holding it


def test_pixel_size_set_for_the_dataset_holds_for_its_sequences(tmp_path):
    folder = build_dataset(tmp_path / "sized", pixel_size_um=0.5)
    assert load_sequence(folder, "alpha").pixel_size_um == 0.5


def test_a_frame_without_instances_gets_the_components_of_its_mask(tmp_path):
    folder = build_dataset(tmp_path / "partly", mask_only={("alpha", 1)})
    alpha = load_sequence(folder, "alpha")
    assert not alpha.tracked, "component ids of a mask are no track ids"
    assert sorted(np.unique(alpha.labels[1]).tolist()) == [0, 1, 2]
    assert np.array_equal(alpha.labels[1] > 0, label_video(SEQUENCES["alpha"][1])[1] > 0)
    assert np.array_equal(alpha.labels[0], label_video(SEQUENCES["alpha"][1])[0])


def test_unknown_sequences_and_broken_rows_say_what_is_wrong(clips):
    with pytest.raises(SequenceError, match=r"clips has no sequence 'gamma'; its sequences: alpha, beta"):
        load_sequence(clips, "gamma")
    with pytest.raises(SequenceError, match=r"lacks frame 1: expected frames 0 … 2"):
        check_sequence_rows("a", [{"frame": 0, "split": "train"}, {"frame": 2, "split": "train"}])
    with pytest.raises(SequenceError, match=r"frame 0 more than once"):
        check_sequence_rows("a", [{"frame": 0, "split": "train"}, {"frame": 0, "split": "train"}])
    with pytest.raises(SequenceError, match=r"several splits \(test, train\)"):
        check_sequence_rows("a", [{"frame": 0, "split": "train"}, {"frame": 1, "split": "test"}])
    (clips / "test" / "masks_instances" / "beta_t0002.png").unlink()
    with pytest.raises(
        SequenceError,
        match=r"instances file test/masks_instances/beta_t0002.png of sequence "
        r"'beta' is missing",
    ):
        load_sequence(clips, "beta")
    manifest = read_manifest(clips)
    next(r for r in manifest["images"] if r["stem"] == "alpha_t0001")["frame"] = "one"
    with pytest.raises(SequenceError, match=r"row 'alpha_t0001' of sequence 'alpha' has frame 'one'"):
        dataset_sequences(clips, manifest)


# --- tracks list / export / score ----------------------------------------------------------------------------


def test_list_shows_frames_size_split_and_cells(clips, capsys):
    code, out, _ = tracks(capsys, "list", "clips")
    assert code == 0
    assert "clips: 2 sequences, pixel size unknown" in out
    lines = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
    assert lines["alpha"][:5] == ["alpha", "train", "4", "24×24", "2–2"]
    assert lines["beta"][:5] == ["beta", "test", "4", "24×24", "1–2"]
    code, out, _ = tracks(capsys, "list", str(clips), "--json")  # a dataset folder works as well as its name
    listing = json.loads(out)
    assert code == 0 and [
        (s["sequence"], s["cells_min"], s["cells_max"], s["track_ids"]) for s in listing["sequences"]
    ] == [("alpha", 2, 2, True), ("beta", 1, 2, True)]


def test_export_writes_ctc_folders_and_track_tables(clips, tmp_path, capsys):
    out_dir = tmp_path / "out"
    code, out, err = tracks(capsys, "export", "clips", "--out", out_dir)
    assert code == 0, err
    assert "alpha: 4 frames, 2 tracks" in out and "beta: 4 frames, 2 tracks" in out
    assert "Pixel size unknown for alpha, beta" in out
    assert sorted(p.name for p in out_dir.iterdir()) == ["alpha", "alpha_tracks.csv", "beta", "beta_tracks.csv"]
    assert sorted(p.name for p in (out_dir / "beta").iterdir()) == [
        "mask000.tif",
        "mask001.tif",
        "mask002.tif",
        "mask003.tif",
        "res_track.txt",
    ]
    assert (out_dir / "beta" / "res_track.txt").read_text() == "7 0 3 0\n8 2 3 0\n"
    assert np.array_equal(tifffile.imread(out_dir / "beta" / "mask002.tif"), label_video(SEQUENCES["beta"][1])[2])
    table = pd.read_csv(out_dir / "alpha_tracks.csv")
    assert list(table.columns) == [
        "sequence",
        "track_id",
        "start_frame",
        "end_frame",
        "n_frames",
        "mean_speed_px_per_frame",
        "displacement_px",
        "parent",
    ]
    assert table["track_id"].tolist() == [10, 20] and set(table["sequence"]) == {"alpha"}
    assert table["mean_speed_px_per_frame"].tolist() == pytest.approx([2.0, 2.0])
    assert table["displacement_px"].tolist() == pytest.approx([6.0, 6.0])


def test_export_in_micrometres_when_the_pixel_size_is_known(data_env, tmp_path, capsys):
    build_dataset(data_env.datasets_dir / "sized", pixel_size_um=0.5)
    code, out, err = tracks(
        capsys,
        "export",
        "sized",
        "--out",
        tmp_path / "out",
        "--sequence",
        "alpha",
        "--format",
        "csv",
        "--frame-minutes",
        "2",
    )
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["alpha_tracks.csv"], "csv only, alpha only"
    table = pd.read_csv(tmp_path / "out" / "alpha_tracks.csv")
    assert {"mean_speed_um_per_min", "displacement_um"} <= set(table.columns)
    assert table["displacement_um"].tolist() == pytest.approx([3.0, 3.0])  # 6 px of 0.5 µm
    assert table["mean_speed_um_per_min"].tolist() == pytest.approx([0.5, 0.5])  # 2 px × 0.5 µm per 2 min


def test_relink_gives_one_track_per_disc_whatever_the_stored_ids(data_env, tmp_path, capsys):
    truth = label_video(SEQUENCES["alpha"][1])
    shuffled = np.zeros_like(truth)
    for t, (a, b) in enumerate([(1, 2), (5, 3), (2, 9), (4, 1)]):  # ids meaning nothing from frame to frame
        shuffled[t][truth[t] == 10], shuffled[t][truth[t] == 20] = a, b
    build_dataset(data_env.datasets_dir / "shuffled", ids={"alpha": shuffled})
    code, out, err = tracks(
        capsys, "export", "shuffled", "--out", tmp_path / "kept", "--sequence", "alpha", "--format", "ctc"
    )
    assert code == 0, err
    assert "alpha: 4 frames, 6 tracks" in out, "without --relink the stored ids are trusted"
    # ids 1 and 2 leave and come back: the CTC writes each as two tracks, the second a child of the first
    assert len((tmp_path / "kept" / "alpha" / "res_track.txt").read_text().splitlines()) == 8
    code, out, err = tracks(
        capsys, "export", "shuffled", "--out", tmp_path / "linked", "--sequence", "alpha", "--relink"
    )
    assert code == 0, err
    assert "alpha: 4 frames, 2 tracks (re-linked)" in out
    assert (tmp_path / "linked" / "alpha" / "res_track.txt").read_text() == "1 0 3 0\n2 0 3 0\n"
    relinked = np.stack([tifffile.imread(tmp_path / "linked" / "alpha" / f"mask{t:03d}.tif") for t in range(FRAMES)])
    for disc in (10, 20):
        assert len(np.unique(relinked[truth == disc])) == 1, f"disc {disc} keeps one id in every frame"
    assert pd.read_csv(tmp_path / "linked" / "alpha_tracks.csv")["n_frames"].tolist() == [4, 4]


def test_a_sequence_with_mask_only_frames_is_linked_and_says_so(data_env, tmp_path, capsys):
    build_dataset(data_env.datasets_dir / "partly", mask_only={("alpha", 1)})
    code, out, err = tracks(capsys, "export", "partly", "--out", tmp_path / "out", "--sequence", "alpha")
    assert code == 0, err
    assert "alpha: 4 frames, 2 tracks (re-linked)" in out and "some frames have no instances file" in out


def test_score_of_the_exported_tracks_is_perfect(clips, tmp_path, capsys):
    assert tracks(capsys, "export", "clips", "--out", tmp_path / "out", "--format", "ctc")[0] == 0
    code, out, err = tracks(capsys, "score", "clips", "--predicted", tmp_path / "out", "--json")
    assert code == 0, err
    scores = json.loads(out)["scores"]
    assert [s["sequence"] for s in scores] == ["alpha", "beta"]
    assert all(s[m] == pytest.approx(1.0) for s in scores for m in ("SEG", "TRA", "DET", "id_kept"))
    (tmp_path / "out" / "beta" / "mask003.tif").unlink()
    code, _, err = tracks(capsys, "score", "clips", "--predicted", tmp_path / "out", "--sequence", "beta")
    assert code == 2 and "sequence beta of clips was not scored" in err and "expected mask000.tif" in err


def test_bad_input_exits_2_naming_what_was_expected(clips, tmp_path, capsys):
    code, out, err = tracks(capsys, "list", "nope")
    assert code == 2 and not out and "No dataset named 'nope'. Known datasets: clips." in err
    code, _, err = tracks(capsys, "export", "clips", "--out", tmp_path / "out", "--sequence", "gamma")
    assert code == 2 and "dataset clips has no sequence 'gamma'; its sequences: alpha, beta." in err
    assert not (tmp_path / "out").exists(), "nothing written for bad input"
    (tmp_path / "file").write_text("x")
    code, _, err = tracks(capsys, "export", "clips", "--out", tmp_path / "file")
    assert code == 2 and "is a file" in err
    blocked = tmp_path / "blocked" / "beta"
    blocked.mkdir(parents=True)
    (blocked / "notes.txt").write_text("mine")
    code, out, err = tracks(capsys, "export", "clips", "--out", tmp_path / "blocked")
    assert code == 2 and "alpha: 4 frames" in out, "the other sequences are still exported"
    assert "sequence beta of clips was not exported" in err and "holds files other than" in err
    assert (blocked / "notes.txt").read_text() == "mine"
    with pytest.raises(SystemExit) as exited:
        tracks(capsys, "export", "clips", "--out", tmp_path / "out", "--frame-minutes", "-1")
    assert exited.value.code == 2 and "must be a number above 0" in capsys.readouterr().err


def test_a_dataset_of_still_images_has_no_sequences(data_env, tmp_path, capsys):
    folder = build_dataset(data_env.datasets_dir / "stills", sequences={})
    assert dataset_sequences(folder) == {}
    code, out, _ = tracks(capsys, "list", "stills")
    assert code == 0 and "holds no time-lapse sequences" in out
    code, _, err = tracks(capsys, "export", "stills", "--out", tmp_path / "out")
    assert code == 2 and "--layout timelapse" in err


# --- with the importer --------------------------------------------------------------------------------------


def test_a_video_imported_with_the_timelapse_layout(data_env, tmp_path, capsys):
    source = tmp_path / "src"
    (source / "input").mkdir(parents=True)
    (source / "labels").mkdir()
    truth = label_video(SEQUENCES["beta"][1])
    images = np.stack([image_of(truth[t], t) for t in range(FRAMES)])
    for folder, video in (("input", images), ("labels", truth)):
        tifffile.imwrite(source / folder / "clip.tif", video, photometric="minisblack", metadata={"axes": "TYX"})
    result = import_dataset(source, ImportOptions(name="imported", layout="timelapse"), data_env)
    clip = load_sequence(result.path, "clip")
    assert np.array_equal(clip.labels, truth) and np.array_equal(clip.images, images) and clip.tracked
    code, out, err = tracks(capsys, "export", "imported", "--out", tmp_path / "out")
    assert code == 0, err
    assert (tmp_path / "out" / "clip" / "res_track.txt").read_text() == "7 0 3 0\n8 2 3 0\n"


def test_the_real_time_lapse_test_split(shared, data_env, tmp_path, capsys):
    source = shared / "datasets" / "usiigaci_t98g_timelapse" / "test"
    import_dataset(source, ImportOptions(name="usiigaci"), data_env)
    name = "usiigaci_t98g_xy01_r2c1"
    code, out, _ = tracks(capsys, "list", "usiigaci", "--json")
    listing = json.loads(out)
    assert code == 0 and listing["pixel_size_um"] == pytest.approx(0.87)
    # the dataset's README: 20 frames of 336 × 512, 18–21 cells per frame, 22 track ids
    assert [
        (s["sequence"], s["frames"], s["width"], s["height"], s["cells_min"], s["cells_max"])
        for s in listing["sequences"]
    ] == [(name, 20, 512, 336, 18, 21)]
    code, out, err = tracks(capsys, "export", "usiigaci", "--out", tmp_path / "out", "--frame-minutes", "10.2")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "out" / f"{name}_tracks.csv")
    assert len(table) == 22 and table["n_frames"].sum() == 382
    assert np.allclose(table["displacement_um"], table["displacement_px"] * 0.87)
    # the README's median step of 3–4.5 px per frame, at 0.87 µm and 10.2 min: about 0.3 µm/min
    assert 0.15 < table["mean_speed_um_per_min"].median() < 0.6
