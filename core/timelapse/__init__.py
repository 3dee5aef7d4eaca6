"""Time-lapse ("video") segmentation: frames of images, and per-frame instance label images whose ids are track ids.

A video is a ``(T, H, W)`` array. In a label video 0 is background and a cell keeps its id in every frame where it
is present. Modules:

* :mod:`core.timelapse.video_files` — reading videos from disk frame by frame;
* :mod:`core.timelapse.video_pairs` — reading an image video beside its label video, checking one against the other;
* :mod:`core.timelapse.sequences` — an imported dataset's videos, one at a time, and cells per frame;
* :mod:`core.timelapse.windows` — the centred window of frames from which each frame is predicted;
* :mod:`core.timelapse.temporal` — temporal post-processing of masks (smoothing along time fills a cell that
  leaves the focal plane for a frame);
* :mod:`core.timelapse.tracks` — linking per-frame cells into tracks, the track table, Cell Tracking Challenge
  files and tracking scores.

Like the rest of :mod:`core`, nothing here imports Streamlit or TensorFlow.
"""
