"""Pictures sent inside the page (``data:`` addresses) rather than as separate files.

Streamlit keeps a picture drawn with ``st.image`` as a file on the server only until the next run of the page
replaces it. When runs follow each other quickly — a slider dragged on Augment, a tab switched while the grid
loads — the browser still asks for pictures of the run before, gets 404s, and shows broken images and console
errors. A picture that travels inside the page cannot go missing. Streamlit remembers large unchanged messages
per browser session, so a rerun that shows the same picture again does not send it again.
"""

from __future__ import annotations

import base64
from pathlib import Path

import cv2
import numpy as np

from core.display import fit_within

DISPLAY_SIDE = 1024  # pictures larger than this are shrunk for the screen (the files keep their full size)


def inline(
    picture: np.ndarray | str | Path, *, fmt: str = "JPEG", quality: int = 88, max_side: int = DISPLAY_SIDE
) -> str:
    """``picture`` (an RGB or grey uint8 array, or an image file) as a ``data:`` address for ``st.image``.

    >>> inline(np.zeros((2, 3, 3), np.uint8), fmt="PNG")[:22]
    'data:image/png;base64,'
    """
    if isinstance(picture, (str, Path)):
        array = cv2.imread(str(picture), cv2.IMREAD_UNCHANGED)
        if array is None:
            raise ValueError(f"{picture} is not a readable picture")
        if array.ndim == 3:  # OpenCV reads BGR(A)
            array = cv2.cvtColor(array, cv2.COLOR_BGRA2RGBA if array.shape[2] == 4 else cv2.COLOR_BGR2RGB)
        picture = array
    array = fit_within(np.ascontiguousarray(picture), max_side)
    if array.ndim == 3 and array.shape[2] == 4 and fmt == "JPEG":
        array = array[..., :3]
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGBA2BGRA if array.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    if fmt == "JPEG":
        ok, encoded = cv2.imencode(".jpg", array, [cv2.IMWRITE_JPEG_QUALITY, quality])
        mime = "image/jpeg"
    else:
        ok, encoded = cv2.imencode(".png", array, [cv2.IMWRITE_PNG_COMPRESSION, 3])
        mime = "image/png"
    if not ok:
        raise ValueError(f"the picture ({array.shape}, {array.dtype}) could not be encoded as {fmt}")
    return f"data:{mime};base64,{base64.b64encode(encoded.tobytes()).decode('ascii')}"
