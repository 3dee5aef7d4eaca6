"""Config objects: unknown keys and bad values are refused with a message that helps."""

import pytest

from core.config import ConfigError, ImportOptions, SplitOptions, from_dict, to_dict
from core.settings import load_settings, resolve_inside_roots


@pytest.mark.parametrize(
    "data, message",
    [
        ({"name": "x", "layuot": "flat"}, "Unknown setting 'layuot' (did you mean 'layout'?)"),
        ({"name": "x", "layout": "zip"}, "layout='zip' is not allowed"),
        ({"name": "x", "mask_threshold": 300}, "mask_threshold=300 must be between 1 and 254"),
        ({"name": "x", "skip_invalid": "yes"}, "skip_invalid must be true or false"),
        ({"name": "x", "split": {"train": 0.9, "valid": 0.2, "test": 0.0}}, "must add up to 1"),
        ({"name": "x", "split": {"seeed": 1}}, "Unknown setting split.'seeed'"),
    ],
)
def test_bad_import_options(data, message):
    with pytest.raises(ConfigError) as raised:
        ImportOptions.from_dict(data)
    assert message in str(raised.value)


def test_round_trip_through_dict():
    options = ImportOptions(name="x", layout="flat", split=SplitOptions(0.8, 0.1, 0.1, 7))
    assert ImportOptions.from_dict(to_dict(options)) == options


@pytest.mark.parametrize(
    "text, expected",
    [
        ("0.7,0.15,0.15", (0.7, 0.15, 0.15)),
        ("80/10/10", (0.8, 0.1, 0.1)),
        ("1,0,0", (1.0, 0.0, 0.0)),
    ],
)
def test_split_parse(text, expected):
    split = SplitOptions.parse(text)
    assert (split.train, split.valid, split.test) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["0.7,0.3", "a,b,c", "0.5,0.5,0.5"])
def test_split_parse_refuses(text):
    with pytest.raises(ConfigError):
        SplitOptions.parse(text)


def test_frozen():
    with pytest.raises(AttributeError):
        from_dict(SplitOptions, {}).seed = 3


def test_settings_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CELLSEG_DATA", str(tmp_path / "root"))
    monkeypatch.setenv("CELLSEG_IMPORT_ROOTS", f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    monkeypatch.setenv("CELLSEG_MAX_UPLOAD_MB", "12")
    settings = load_settings()
    assert settings.data_root == tmp_path / "root" and settings.catalogue_path.parent == tmp_path / "root"
    assert settings.import_roots == (tmp_path / "a", tmp_path / "b") and settings.max_upload_bytes == 12 * 2**20


def test_bad_number_in_environment_names_the_variable(monkeypatch):
    monkeypatch.setenv("CELLSEG_MAX_UPLOAD_MB", "lots")
    with pytest.raises(ValueError, match="CELLSEG_MAX_UPLOAD_MB"):
        load_settings()


def test_paths_must_stay_inside_allowed_roots(tmp_path):
    root = tmp_path / "allowed"
    (root / "data").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    (root / "sneaky").symlink_to(tmp_path / "secret")
    assert resolve_inside_roots(root / "data", (root,)) == root / "data"
    for escape in (root / ".." / "secret", root / "sneaky", "/etc"):
        with pytest.raises(PermissionError, match="outside the folders this server may import from"):
            resolve_inside_roots(escape, (root,))
