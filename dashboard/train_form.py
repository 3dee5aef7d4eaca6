"""The training form: dataset, preset, model, augmentation, and every setting under *Advanced*.

Every setting keeps its value across page visits; a number outside its range is named with the
allowed range, and nothing can be launched until the form is valid, so a run's config is exactly
what the form shows. A recurrent model (:data:`~core.models.config.RECURRENT_MODELS`) asks for its
frames per window, and needs a dataset of time-lapse videos: on still images the form says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from core.augment.presets import DEFAULT_PRESET, list_presets, load_preset
from core.catalogue.datasets import list_sequences
from core.config import ConfigError
from core.models.config import LOSS_HELP, MODEL_HELP, OUTPUT_HELP, RECURRENT_MODELS, ModelConfig
from core.runs.notes import MAX_NAME_LENGTH
from core.train.config import FIELD_RANGES, DataConfig, TrainConfig
from core.train.environment import auto_precision_note, remembered_precision
from core.train.presets import PRESET_HELP, PRESETS, from_seed_keys, preset_config
from dashboard import context
from dashboard.widget_state import keep, linked, publish

SEED_TRAINING_KEY = "seed-training-settings"
LR_KEY = "train-learning-rate"
CLEAR_LABELS_KEY = "train-clear-labels"
OUTPUT_LABELS = {
    "binary": "cell or background",
    "three_class": "three classes (interior, boundary)",
    "distance": "cell + distance to edge",
}
WINDOW_KEY = "train-time-window"
WINDOW_RANGE = (3, 15)  # ModelConfig.time_window: odd, 3 to 15
WINDOW_HELP = (
    "The model segments each frame from this many frames of the video centred on it (5: two before, "
    "the frame, two after); at the start and end of a video the first or last frame is repeated to fill "
    "the window. More frames give more context over time (a cell that dims or blurs for a frame is still "
    "found), but training and prediction take longer, roughly in proportion. An odd number from 3 to 15."
)


def _has_videos(dataset: str) -> bool:
    """Whether the dataset holds time-lapse videos (manifest rows with a ``sequence``), from the catalogue."""
    return not list_sequences(context.cursor(), dataset).empty


def _window_field(base: ModelConfig, problems: list[str]) -> int | None:
    """Frames per window of a recurrent model: a number box without limits of its own (see :func:`_number`), so
    an even or out-of-range value is named with what is allowed instead of being quietly replaced."""
    low, high = WINDOW_RANGE
    label = "Frames per window"
    value = st.number_input(label, value=None, step=2, key=keep(WINDOW_KEY, base.time_window), help=WINDOW_HELP)
    allowed = f"an odd number from {low} to {high} (3, 5, 7, …)"
    if value is None:
        problems.append(f"**{label}** is empty: enter {allowed}.")
    elif not low <= value <= high or value % 2 == 0:
        problems.append(
            f"**{label}**: {_shown(value)} is not allowed; enter {allowed}, since the window is centred "
            "on the frame it segments."
        )
    return value


def _model_fields(base: ModelConfig, custom: bool, videos: bool, problems: list[str]) -> dict:
    names, outputs = list(MODEL_HELP), list(OUTPUT_HELP)
    left, right = st.columns(2)
    name = left.selectbox(
        "Model",
        names,
        key=keep("train-model", base.name, names),
        help="\n\n".join(f"**{k}**: {v}" for k, v in MODEL_HELP.items()),
    )
    output = right.selectbox(
        "Output",
        outputs,
        key=keep("train-output", base.output, outputs),
        format_func=OUTPUT_LABELS.get,
        help="What the model predicts per pixel, and so how touching cells are told apart.\n\n"
        + "\n\n".join(f"**{OUTPUT_LABELS[k]}**: {v}" for k, v in OUTPUT_HELP.items()),
    )
    values = {"name": name, "output": output}
    if name in RECURRENT_MODELS:
        values["time_window"] = _window_field(base, problems)
    elif videos:
        st.caption(
            f"This dataset holds time-lapse videos: {name} trains on their frames as still images, one at a "
            f"time. {' and '.join(RECURRENT_MODELS)} also use the frames around each frame."
        )
    if output == "three_class":
        values["boundary_width"] = st.slider(
            "Boundary width (px)",
            1,
            8,
            key=keep("train-boundary", base.boundary_width),
            help="How thick the band along each cell's edge the model learns to "
            "mark as boundary: thicker separates touching cells more surely, "
            "thinner keeps small cells' insides.",
        )
    if not custom:
        return values
    a, b = st.columns(2)
    values["base_filters"] = a.select_slider(
        "Width (filters)",
        [8, 12, 16, 24, 32, 48, 64],
        key=keep("train-filters", base.base_filters),
        help="Filters at the first level; doubles per level. Wider learns more, runs slower.",
    )
    values["depth"] = b.slider(
        "Depth (levels)",
        2,
        6,
        key=keep("train-depth", base.depth),
        help="Down-sampling steps: deeper sees more context (bigger cells).",
    )
    a, b = st.columns(2)
    values["first_kernel"] = a.select_slider(
        "First kernel",
        [3, 5, 7, 9, 11],
        key=keep("train-kernel", base.first_kernel),
        help="Convolution size at full resolution (the seed's base_kernels); shrinks per level.",
    )
    values["dilation"] = b.slider(
        "Dilation",
        1,
        4,
        key=keep("train-dilation", base.dilation),
        help="Spreads the first-level kernel to see wider without more weights.",
    )
    a, b = st.columns(2)
    values["dropout"] = a.slider(
        "Dropout (deepest level)",
        0.0,
        0.5,
        step=0.05,
        key=keep("train-dropout", base.dropout),
        help="Randomly silences features while training to fight over-fitting.",
    )
    values["batch_norm"] = b.toggle(
        "Batch normalisation",
        key=keep("train-bn", base.batch_norm),
        help="Steadier training at higher learning rates; about a third slower on CPU.",
    )
    if name in ("mobilenetv2_unet", "deeplabv3_plus"):
        values["encoder_weights"] = st.text_input(
            "Encoder weights",
            key=keep("train-encoder", base.encoder_weights),
            help="'none' (train from scratch), 'imagenet' (needs internet once) or the path of a weights file.",
        )
    return values


def _data_fields(base: DataConfig) -> dict:
    a, b = st.columns(2)
    values = {
        "patch_size": a.select_slider(
            "Patch size (px)",
            [64, 128, 192, 256, 320, 384, 512],
            key=keep("train-patch", base.patch_size),
            help="Side of the square pieces the model trains on. Bigger sees more context, runs slower.",
        ),
        "min_foreground": b.slider(
            "Cells in a crop (at least)",
            0.0,
            0.5,
            step=0.01,
            key=keep("train-minfg", base.min_foreground),
            help="Most crops are drawn to contain at least this share of cell pixels, so sparse cells are seen.",
        ),
    }
    a, b = st.columns(2)
    values["sampling"] = a.radio(
        "Patches by",
        ["crop", "resize"],
        key=keep("train-sampling", base.sampling),
        horizontal=True,
        help="Crop: random windows at full resolution (best for cells). Resize: whole images shrunk to the patch size.",
    )
    values["normalisation"] = b.radio(
        "Normalise by",
        ["percentile", "minmax"],
        key=keep("train-norm", base.normalisation),
        horizontal=True,
        help="Per image. Percentile ignores a few hot pixels.",
    )
    a, b = st.columns(2)
    channels = a.text_input(
        "Channels",
        key=keep("train-channels", ""),
        placeholder="automatic, or e.g. 0,2",
        help="Which image channels the model sees (numbers from 0, separated by commas); "
        "empty uses grey, or RGB for colour images.",
    )
    values["channel_dropout"] = b.slider(
        "Channel dropout",
        0.0,
        0.5,
        step=0.05,
        key=keep("train-chdrop", base.channel_dropout),
        help="Sometimes blank one channel, so the model does not depend on a single stain.",
    )
    values["merge_channels"] = st.toggle(
        "Merge the channels into one",
        key=keep("train-merge", base.merge_channels),
        help="Average the chosen channels into one grey image.",
    )
    try:
        values["channels"] = tuple(int(v) for v in channels.replace(" ", "").split(",") if v)
    except ValueError as exc:
        raise ConfigError(f"Channels: {channels!r} must be channel numbers separated by commas.") from exc
    values["validation"] = st.radio(
        "Validate on",
        ["whole", "tiles"],
        key=keep("train-valmode", base.validation),
        horizontal=True,
        format_func={"whole": "whole images", "tiles": "tiles of the patch size"}.get,
        help="Whole images, or tiles of the patch size (for very large images).",
    )
    return values


def _number(column, label: str, field: str, start, problems: list[str], **options):
    """A number box with no limits of its own: the browser sends what was typed, and a value outside
    the setting's range (or an empty box) is named here with the allowed range, instead of the box
    quietly keeping an older value."""
    low, high = FIELD_RANGES[field]
    whole = isinstance(start, int) and not isinstance(start, bool)
    value = column.number_input(
        label,
        value=None,
        step=1 if whole else options.pop("step", None),
        key=keep(options.pop("key"), start),
        **options,
    )
    allowed = f"{_shown(low)} to {_shown(high)}"
    if value is None:
        problems.append(f"**{label}** is empty: enter {'a whole number' if whole else 'a number'} from {allowed}.")
    elif not low <= value <= high:
        problems.append(f"**{label}**: {_shown(value)} is outside the allowed range, {allowed}.")
    return value


def _shown(value) -> str:
    """``10000`` → ``'10,000'``, ``1e-06`` → ``'1e-06'``, ``2.5`` → ``'2.5'``."""
    if isinstance(value, int) or float(value).is_integer() and abs(value) >= 1:
        return f"{int(value):,}"
    return f"{value:g}"


def _training_fields(base: TrainConfig, problems: list[str]) -> dict:
    a, b = st.columns(2)
    values = {
        "batch_size": a.select_slider(
            "Batch size",
            [1, 2, 4, 8, 12, 16, 24, 32],
            key=keep("train-batch", base.batch_size),
            help="Patches per step; lower it if memory runs out.",
        ),
        "epochs": _number(
            b,
            "Most epochs",
            "epochs",
            base.epochs,
            problems,
            key="train-epochs",
            help="Training stops earlier when validation Dice stops improving, or when the time budget is used up.",
        ),
        "minutes": _number(
            a,
            "Time budget (minutes)",
            "minutes",
            float(base.minutes),
            problems,
            step=1.0,
            key="train-minutes",
            help="Stops cleanly when the time is up; 0 means no limit.",
        ),
    }
    values["learning_rate"] = _number(
        b,
        "Learning rate",
        "learning_rate",
        float(base.learning_rate),
        problems,
        key=LR_KEY,
        format="%g",
        step=1e-4,
        help="Step size, e.g. 0.001 or 1e-3. Too high: the loss jumps or becomes "
        "NaN; too low: slow. The learning-rate finder suggests one.",
    )
    a, b = st.columns(2)
    values["loss"] = a.selectbox(
        "Loss",
        list(LOSS_HELP),
        key=keep("train-loss", base.loss, list(LOSS_HELP)),
        help="\n\n".join(f"**{k}**: {v}" for k, v in LOSS_HELP.items()),
    )
    values["optimizer"] = b.selectbox(
        "Optimiser",
        ["adam", "adamw", "sgd"],
        key=keep("train-optimizer", base.optimizer, ["adam", "adamw", "sgd"]),
        help="Adam is a safe default.",
    )
    a, b = st.columns(2)
    values["lr_patience"] = _number(
        a,
        "Lower the rate after (epochs)",
        "lr_patience",
        base.lr_patience,
        problems,
        key="train-lrpat",
        help="Halve the learning rate after this many epochs without progress in validation Dice.",
    )
    values["early_stopping"] = _number(
        b,
        "Stop after (epochs)",
        "early_stopping",
        base.early_stopping,
        problems,
        key="train-early",
        help="Stop training after this many epochs without progress in validation Dice.",
    )
    a, b = st.columns(2)
    values["precision"] = a.selectbox(
        "Precision",
        ["auto", "float32", "bfloat16", "float16"],
        key=keep("train-precision", base.precision, ["auto", "float32", "bfloat16", "float16"]),
        help="auto: float16 on GPUs; on CPUs bfloat16 where it measured at least "
        "15 % faster than float32 (measured once per machine), else float32.",
    )
    a.caption(precision_note())
    values["seed"] = _number(
        b,
        "Seed",
        "seed",
        base.seed,
        problems,
        key="train-seed",
        help="Starting point of every random choice; the same seed and settings give the same crops and augmentations.",
    )
    values["deterministic"] = st.toggle(
        "Reproducible (slower)",
        key=keep("train-det", base.deterministic),
        help="Same seed, same result, bit for bit: slower, since some faster "
        "operations give slightly different results each time.",
    )
    return values


def precision_note() -> str:
    """What *auto* precision means on this machine, as the workers remembered it (no TensorFlow is loaded)."""
    return auto_precision_note(remembered_precision(context.settings().cache_dir))


@dataclass(frozen=True)
class TrainForm:
    """What the form holds: the config when every setting is usable, else the problems, each naming its field."""

    config: TrainConfig | None
    problems: tuple[str, ...] = ()


def train_form(datasets: list[str]) -> TrainForm:
    """Draw the form (the ``?dataset=`` of a link picks the dataset); return the config or the problems."""
    data_root = context.settings().data_root
    dataset = st.selectbox(
        "Dataset",
        datasets,
        key=linked("dataset", "train-dataset", datasets),
        help="The images to train on (its train split; its valid split scores each epoch).",
    )
    publish("dataset", "train-dataset", dataset)
    choices = list(PRESETS) + ["refine", "custom"]
    preset = (
        st.segmented_control(
            "Preset",
            choices,
            key=keep("train-preset", "quick", choices),
            help="\n\n".join(f"**{k}**: {v}" for k, v in PRESET_HELP.items()),
        )
        or "quick"
    )
    augment_names = list_presets(data_root)
    augment = st.selectbox(
        "Augmentation",
        augment_names,
        key=keep("train-augment", DEFAULT_PRESET, augment_names),
        help="How training images are varied: presets from the Augment page.",
    )
    problems: list[str] = []
    videos = _has_videos(dataset)
    if preset == "refine":
        form = _refine_form(dataset, augment)
        if form.config is not None and form.config.model.recurrent and not videos:
            return TrainForm(None, (_no_videos(form.config.model.name, dataset),))
        return form
    try:
        base = preset_config("quick" if preset == "custom" else preset, dataset, data_root)
        custom = preset == "custom"
        overrides = dict(base.to_dict())
        overrides["preset"] = preset  # custom starts from quick's values but is recorded as custom
        with st.expander("Advanced settings", expanded=custom, icon=":material/tune:"):
            if not custom:
                st.caption(f"Preset *{preset}*: {PRESET_HELP[preset]} Choose *custom* to change anything.")
                if base.precision == "auto":
                    st.caption(f"Precision: {precision_note()}")
            overrides["model"] = {**overrides["model"], **_model_fields(base.model, custom, videos, problems)}
            if custom:
                overrides["data"] = {**overrides["data"], **_data_fields(base.data)}
                overrides.update(_training_fields(base, problems))
                _apply_seed_settings(overrides)
        if overrides["model"]["name"] in RECURRENT_MODELS and not videos:
            problems.insert(0, _no_videos(overrides["model"]["name"], dataset))
        if problems:
            return TrainForm(None, tuple(problems))
        overrides["augment"] = load_preset(data_root, augment).to_dict()
        overrides["augment_preset"] = augment
        return TrainForm(TrainConfig.from_dict(overrides))
    except ConfigError as exc:
        return TrainForm(None, (f"Setting not accepted: {exc}",))


def _no_videos(model: str, dataset: str) -> str:
    """Why a recurrent model cannot train on a dataset of still images (the worker would refuse it), and what to
    do instead; a problem of the form, so nothing is launched."""
    return (
        f"**{model}** learns from time-lapse videos, and dataset *{dataset}* has none (only still images). "
        "Choose a 2-D model such as unet, or import videos as a dataset with the *timelapse* layout on the "
        "Datasets page (python -m core datasets import PATH --layout timelapse)."
    )


def _refine_form(dataset: str, augment: str) -> TrainForm:
    """Refine: choose the model to continue from; the rest comes from it (see core.train.runs.refine_config)."""
    from core.models.shipped import list_models
    from core.proposals.job import default_model
    from core.runs.folder import list_runs
    from core.train.runs import refine_config, runs_dir

    settings = context.settings()
    donors = [
        run.run_id
        for run in list_runs(runs_dir(settings))
        if (run.checkpoints / "best.keras").is_file() and run.read_config().get("train", {}).get("dataset") == dataset
    ] + [model.name for model in list_models(settings)]
    if not donors:
        return TrainForm(
            None, ("Refine continues from a trained model of this dataset or a shipped model; there is none yet.",)
        )
    preferred = default_model(settings, dataset)
    donor = st.selectbox(
        "Start from",
        donors,
        key=keep(f"train-donor-{dataset}", preferred if preferred in donors else donors[0], donors),
        help="The model to continue from: the shipped generalist, or a run of this dataset. Its "
        "model settings are kept so its weights fit.",
    )
    st.caption(f"Preset *refine*: {PRESET_HELP['refine']}")
    try:
        config = refine_config(settings, dataset, donor)
        return TrainForm(config.replace(augment=load_preset(settings.data_root, augment), augment_preset=augment))
    except ConfigError as exc:
        return TrainForm(None, (f"Setting not accepted: {exc}",))


def run_label_fields() -> tuple[str, str]:
    """An optional name and note for the run about to start (the Runs page shows and edits them later);
    emptied after a launch, so the next run does not repeat them."""
    if st.session_state.pop(CLEAR_LABELS_KEY, False):
        st.session_state.pop("train-run-name", None)
        st.session_state.pop("train-run-note", None)
    name = st.text_input(
        "Run name (optional)",
        key="train-run-name",
        max_chars=MAX_NAME_LENGTH,
        placeholder="e.g. more zoom, fixed masks",
        help="Shown on the Runs page instead of the run's id; you can change it there.",
    )
    note = st.text_area(
        "Note (optional)",
        key="train-run-note",
        height=68,
        placeholder="What you are trying with this run",
        help="Free text kept with the run, e.g. why you changed a setting.",
    )
    return name.strip(), note.strip()


def _apply_seed_settings(overrides: dict) -> None:
    """Apply the [model]/[train] values of a seed config imported on the Augment page, if the user wants them."""
    training = st.session_state.get(SEED_TRAINING_KEY)
    if not training or not st.toggle(
        "Use the [model]/[train] values of the imported config file", key=keep("train-seed-apply", False)
    ):
        return
    fields, notes = from_seed_keys(training)
    st.caption("; ".join(notes))
    for section in ("model", "data"):
        overrides[section] = {**overrides[section], **fields.pop(section, {})}
    overrides.update(fields)
