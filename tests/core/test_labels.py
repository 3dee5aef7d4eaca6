"""Label states: images imported without masks, proposals by a model, corrections by people, and which masks teach."""

import numpy as np
import pytest

from core.catalogue import store
from core.catalogue.datasets import sync_datasets
from core.config import ConfigError, ImportOptions
from core.datasets.importer import ImportFailed, import_dataset
from core.datasets.manifest import read_manifest
from core.evaluation.job import EvaluationError, dataset_items
from core.io import read_image
from core.masks.undo import MaskState
from core.masks.versions import PersonsMask, current_version, save_mask
from core.train.data import load_splits
from core.train.runs import dataset_lineage
from tests.helpers import blobs, make_flat, make_splits, write_image


def _raw_folder(root, n=4, size=48):
    for k in range(n):
        write_image(root / f"raw{k:02d}.png", blobs(300 + k, size)[0])
    return root


def _rows(settings, name):
    return {row["stem"]: row for row in read_manifest(settings.datasets_dir / name)["images"]}


def test_a_folder_of_raw_images_imports_as_unlabelled(tmp_path, settings):
    result = import_dataset(_raw_folder(tmp_path / "raw"), ImportOptions(name="raw", images_only=True), settings)
    rows = _rows(settings, "raw")
    assert len(rows) == 4 and {row["label"] for row in rows.values()} == {"unlabelled"}
    assert read_manifest(settings.datasets_dir / "raw")["layout"] == "images"
    mask = read_image(settings.datasets_dir / "raw" / next(iter(rows.values()))["mask"])
    assert mask.shape == (48, 48) and mask.max() == 0, "an empty mask stands in until someone draws one"
    assert not result.report.errors and any(
        f.code == "unlabelled" and f.severity == "info" for f in result.report.findings
    )


def test_without_images_only_a_folder_of_images_is_refused_with_the_way_out(tmp_path, settings):
    with pytest.raises(ImportFailed) as failed:
        import_dataset(_raw_folder(tmp_path / "raw"), ImportOptions(name="raw"), settings)
    finding = failed.value.report.errors[0]
    assert finding.code == "no-masks" and "unlabelled" in finding.hint


def test_images_only_keeps_the_masks_there_are(tmp_path, settings):
    source = make_flat(tmp_path / "half", n=6)
    for stem in ("cell01", "cell04"):
        (source / "masks" / f"{stem}.png").unlink()
    import_dataset(source, ImportOptions(name="half", images_only=True), settings)
    labels = {stem: row["label"] for stem, row in _rows(settings, "half").items()}
    assert labels == {
        "cell00": "truth",
        "cell01": "unlabelled",
        "cell02": "truth",
        "cell03": "truth",
        "cell04": "unlabelled",
        "cell05": "truth",
    }


def test_the_catalogue_indexes_label_states(tmp_path, settings):
    import_dataset(_raw_folder(tmp_path / "raw"), ImportOptions(name="raw", images_only=True), settings)
    import_dataset(make_splits(tmp_path / "full"), ImportOptions(name="full"), settings)
    con = store.connect(settings.catalogue_path)
    sync_datasets(con, settings.datasets_dir)
    counts = dict(con.execute("SELECT dataset || ':' || label, count(*) FROM images GROUP BY ALL").fetchall())
    assert counts == {"raw:unlabelled": 4, "full:truth": 8}


@pytest.fixture
def mixed(tmp_path, settings):
    """A dataset with truth in every split and two unlabelled training images."""
    source = make_splits(tmp_path / "mixed", {"train": 4, "valid": 2, "test": 2})
    for stem in ("img000", "img001"):
        (source / "train" / "masks" / f"{stem}.png").unlink()
    import_dataset(source, ImportOptions(name="mixed", images_only=True), settings)
    return settings.datasets_dir / "mixed"


def test_a_person_s_save_corrects_and_a_proposal_never_overwrites_it(mixed, settings):
    row = next(r for r in read_manifest(mixed)["images"] if r["stem"] == "img000")
    painted = MaskState(np.zeros((48, 48), np.uint8))
    painted.binary[10:20, 10:20] = 255
    proposal = save_mask(mixed, row, painted, 0, tool="proposal", proposed_by="generalist", uncertainty=0.2)
    assert proposal.label == "proposed" and _rows(settings, "mixed")["img000"]["label"] == "proposed"
    assert _rows(settings, "mixed")["img000"]["proposed_by"] == "generalist"
    corrected = save_mask(mixed, row, painted, 1, tool="paint")
    assert corrected.label == "corrected" and _rows(settings, "mixed")["img000"]["label"] == "corrected"
    before = (mixed / row["mask"]).read_bytes()
    for stem, base in (("img000", 2), ("img002", 0)):  # corrected by a person / imported with a mask
        target = next(r for r in read_manifest(mixed)["images"] if r["stem"] == stem)
        with pytest.raises(PersonsMask, match="never replaces a mask a person made"):
            save_mask(
                mixed,
                target,
                MaskState(np.zeros((48, 48), np.uint8)),
                base,
                tool="proposal",
                proposed_by="generalist",
                force=True,
            )
    assert (mixed / row["mask"]).read_bytes() == before and current_version(mixed, "img000") == 2


def test_only_masks_people_made_train_and_score(mixed, settings):
    splits = load_splits(mixed)
    assert sorted(i.stem for i in splits.train + splits.valid) == ["img002", "img003", "img004", "img005"]
    assert any("2 unlabelled" in note for note in splits.notes)
    assert [i.stem for i in dataset_items(mixed, "test")] == ["img006", "img007"]
    lineage = dataset_lineage(mixed)
    assert lineage["images"] == {"train": 2, "valid": 2, "test": 2}
    assert lineage["labels"] == {"unlabelled": 2, "proposed": 0, "corrected": 0, "truth": 6}


def test_a_dataset_with_nothing_labelled_says_what_to_do(tmp_path, settings):
    import_dataset(_raw_folder(tmp_path / "raw", n=6), ImportOptions(name="raw", images_only=True), settings)
    folder = settings.datasets_dir / "raw"
    with pytest.raises(ConfigError, match="6 unlabelled\\): correct or accept some in the editor first"):
        load_splits(folder)
    split = read_manifest(folder)["images"][0]["split"]
    with pytest.raises(EvaluationError, match="with a mask made by a person yet"):
        dataset_items(folder, split)


def test_raw_images_are_added_to_an_existing_dataset(tmp_path, mixed, settings):
    from core.datasets.adding import add_images

    result = add_images(settings, "mixed", _raw_folder(tmp_path / "more", n=3), split="train")
    assert result.added == {"train": 3, "valid": 0, "test": 0} and result.labels == {"unlabelled": 3}
    rows = _rows(settings, "mixed")
    assert len(rows) == 11 and rows["raw01"]["label"] == "unlabelled" and rows["raw01"]["split"] == "train"
    assert (mixed / rows["raw01"]["image"]).is_file() and (mixed / rows["raw01"]["mask"]).is_file()
    assert read_manifest(mixed)["counts"]["train"] == 7
    assert not list(mixed.glob(".adding-*")), "the staging folder is gone"


def test_adding_an_image_the_dataset_has_is_refused_by_name_and_changes_nothing(tmp_path, mixed, settings):
    from core.datasets.adding import add_images

    before = (mixed / "dataset.json").read_bytes()
    clash = tmp_path / "clash"
    write_image(clash / "img003.png", blobs(1)[0])
    write_image(clash / "new.png", blobs(2)[0])
    with pytest.raises(ImportFailed) as failed:
        add_images(settings, "mixed", clash)
    assert [f.code for f in failed.value.report.errors] == ["name-taken"]
    assert "img003.png" in failed.value.report.errors[0].file
    assert (mixed / "dataset.json").read_bytes() == before and not (mixed / "train" / "images" / "new.png").exists()


@pytest.mark.parametrize(("corrected", "train", "valid"), [(1, 1, 1), (2, 1, 1), (3, 2, 1)])
def test_raw_images_all_join_the_training_pool_and_a_few_corrections_can_train(
    tmp_path, settings, corrected, train, valid
):
    import_dataset(_raw_folder(tmp_path / "raw", n=4), ImportOptions(name="raw", images_only=True), settings)
    folder = settings.datasets_dir / "raw"
    rows = read_manifest(folder)["images"]
    assert {row["split"] for row in rows} == {"train"}, "raw images form the pool to correct"
    for row in rows[:corrected]:
        painted = MaskState(np.zeros((48, 48), np.uint8))
        painted.binary[5:15, 5:15] = 255
        save_mask(folder, row, painted, 0, tool="paint")
    splits = load_splits(folder)
    assert (len(splits.train), len(splits.valid)) == (train, valid)


def test_a_zip_of_raw_images_with_other_files_imports_the_images_and_names_the_rest(tmp_path, settings):
    import zipfile

    raw = _raw_folder(tmp_path / "raw", n=3)
    (raw / "notes.txt").write_text("acquisition notes")
    (raw / "settings.xml").write_text("<xml/>")
    archive = tmp_path / "raw.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(raw.iterdir()):
            out.write(path, f"slides/{path.name}")
    result = import_dataset(archive, ImportOptions(name="zipped", images_only=True), settings)
    assert len(_rows(settings, "zipped")) == 3
    ignored = sorted(f.file for f in result.report.findings if f.code == "not-an-image")
    assert ignored == ["notes.txt", "settings.xml"], ignored
