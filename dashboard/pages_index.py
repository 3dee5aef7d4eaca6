"""The dashboard's pages, in menu order; pages link to each other through these paths."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PAGES_DIR = Path(__file__).resolve().parent.parent / "pages"


@dataclass(frozen=True)
class PageEntry:
    path: Path
    title: str
    icon: str
    default: bool = False
    needs: str | None = None  # the action (core.accounts.roles.ACTIONS) without which the page is not listed


PAGES = {
    "datasets": PageEntry(PAGES_DIR / "datasets.py", "Datasets", ":material/photo_library:", default=True),
    "annotate": PageEntry(PAGES_DIR / "annotate.py", "Annotate", ":material/brush:"),
    "augment": PageEntry(PAGES_DIR / "augment.py", "Augment", ":material/auto_awesome_mosaic:"),
    "train": PageEntry(PAGES_DIR / "train.py", "Train", ":material/model_training:"),
    "results": PageEntry(PAGES_DIR / "results.py", "Results", ":material/fact_check:"),
    "predict": PageEntry(PAGES_DIR / "predict.py", "Predict", ":material/center_focus_strong:"),
    "runs": PageEntry(PAGES_DIR / "runs.py", "Runs", ":material/compare_arrows:"),
    "admin": PageEntry(PAGES_DIR / "admin.py", "Admin", ":material/admin_panel_settings:", needs="users.manage"),
}


def page_path(name: str) -> str:
    """The path ``st.page_link`` and ``st.switch_page`` accept for page ``name``."""
    return str(PAGES[name].path)
