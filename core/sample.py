"""The shipped sample dataset, imported on first start so a new user sees real images at once."""

from __future__ import annotations

import logging
from pathlib import Path

from core.accounts.acting import acting_as
from core.accounts.manage import SERVER
from core.config import ImportOptions
from core.datasets.importer import import_dataset
from core.datasets.report import ImportFailed
from core.settings import SAMPLE_DIR, Settings

log = logging.getLogger(__name__)

SAMPLE_NAME = "nuclei-sample"
SAMPLE_SOURCE = SAMPLE_DIR / "dsb2018_nuclei_sample"


def ensure_sample(settings: Settings, source: Path = SAMPLE_SOURCE) -> bool:
    """Import the shipped sample once per data root; return True when it was imported now.

    A marker file remembers that it was done, so a user who deletes the sample does
    not get it back on every start.
    """
    marker = settings.layout.sample_marker
    if marker.exists() or (settings.datasets_dir / SAMPLE_NAME).exists():
        return False
    if not source.is_dir():
        log.warning("shipped sample %s is missing; nothing to import", source)
        return False
    try:
        with acting_as(SERVER, settings.data_root):  # set-up work, whoever's page triggered it
            import_dataset(source, ImportOptions(name=SAMPLE_NAME, layout="splits"), settings)
    except ImportFailed as exc:
        log.error("could not import the shipped sample: %s", exc.report.to_text(5))
        return False
    marker.write_text("The shipped sample was imported into this data root.\n", encoding="utf-8")
    return True
