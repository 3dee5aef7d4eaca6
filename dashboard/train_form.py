"""The training form: dataset, preset, model, augmentation, and every setting under *Advanced* — returns a config."""

from __future__ import annotations

import streamlit as st

from core.augment.presets import DEFAULT_PRESET, list_presets, load_preset
from core.config import ConfigError
from core.models.config import LOSS_HELP, MODEL_HELP, ModelConfig
from core.train.config import DataConfig, TrainConfig
from core.train.presets import PRESET_HELP, PRESETS, from_seed_keys, preset_config
from dashboard import context

SEED_TRAINING_KEY = "seed-training-settings"
LR_KEY = "train-learning-rate"


def _model_fields(base: ModelConfig, custom: bool) -> dict:
    name = st.selectbox("Model", list(MODEL_HELP), index=list(MODEL_HELP).index(base.name), key="train-model",
                        help="\n\n".join(f"**{k}**: {v}" for k, v in MODEL_HELP.items()))
    values = {"name": name}
    if not custom:
        return values
    a, b, c = st.columns(3)
    values["base_filters"] = a.select_slider("Width (filters)", [8, 12, 16, 24, 32, 48, 64], base.base_filters,
                                             key="train-filters", help="Filters at the first level; doubles per "
                                                                       "level. Wider learns more, runs slower.")
    values["depth"] = b.slider("Depth (levels)", 2, 6, base.depth, key="train-depth",
                               help="Down-sampling steps: deeper sees more context (bigger cells).")
    values["first_kernel"] = c.select_slider("First kernel", [3, 5, 7, 9, 11], base.first_kernel,
                                             key="train-kernel", help="Convolution size at full resolution "
                                                                      "(the seed's base_kernels); shrinks per level.")
    a, b, c = st.columns(3)
    values["dilation"] = a.slider("Dilation", 1, 4, base.dilation, key="train-dilation",
                                  help="Spreads the first-level kernel to see wider without more weights.")
    values["dropout"] = b.slider("Dropout (deepest level)", 0.0, 0.5, base.dropout, 0.05, key="train-dropout",
                                 help="Randomly silences features while training to fight over-fitting.")
    values["batch_norm"] = c.toggle("Batch normalisation", base.batch_norm, key="train-bn",
                                    help="Steadier training at higher learning rates; about a third slower on CPU.")
    if name in ("mobilenetv2_unet", "deeplabv3_plus"):
        values["encoder_weights"] = st.text_input(
            "Encoder weights", base.encoder_weights, key="train-encoder",
            help="'none' (train from scratch), 'imagenet' (needs internet once) or the path of a weights file.")
    return values


def _data_fields(base: DataConfig) -> dict:
    a, b, c = st.columns(3)
    values = {"patch_size": a.select_slider("Patch size (px)", [64, 128, 192, 256, 320, 384, 512], base.patch_size,
                                            key="train-patch", help="Side of the square pieces the model trains "
                                                                    "on. Bigger sees more context, runs slower."),
              "sampling": b.radio("Patches by", ["crop", "resize"], ["crop", "resize"].index(base.sampling),
                                  key="train-sampling", horizontal=True,
                                  help="Crop: random windows at full resolution (best for cells). Resize: whole "
                                       "images shrunk to the patch size."),
              "min_foreground": c.slider("Cells in a crop (at least)", 0.0, 0.5, base.min_foreground, 0.01,
                                         key="train-minfg", help="Most crops are drawn to contain at least this "
                                                                 "share of cell pixels, so sparse cells are seen.")}
    a, b, c = st.columns(3)
    values["normalisation"] = a.radio("Normalise by", ["percentile", "minmax"],
                                      ["percentile", "minmax"].index(base.normalisation), key="train-norm",
                                      horizontal=True, help="Per image. Percentile ignores a few hot pixels.")
    channels = b.text_input("Channels (e.g. 0,2; empty = automatic)", key="train-channels",
                            help="Which image channels the model sees; empty uses grey, or RGB for colour images.")
    values["merge_channels"] = c.toggle("Merge channels into one", base.merge_channels, key="train-merge")
    try:
        values["channels"] = tuple(int(v) for v in channels.replace(" ", "").split(",") if v)
    except ValueError as exc:
        raise ConfigError(f"channels: {channels!r} must be channel numbers separated by commas.") from exc
    a, b = st.columns(2)
    values["channel_dropout"] = a.slider("Channel dropout", 0.0, 0.5, base.channel_dropout, 0.05,
                                         key="train-chdrop", help="Sometimes blank one channel, so the model does "
                                                                  "not depend on a single stain.")
    values["validation"] = b.radio("Validate on", ["whole", "tiles"], ["whole", "tiles"].index(base.validation),
                                   key="train-valmode", horizontal=True,
                                   help="Whole images, or tiles of the patch size (for very large images).")
    return values


def _training_fields(base: TrainConfig) -> dict:
    a, b, c = st.columns(3)
    values = {"batch_size": a.select_slider("Batch size", [1, 2, 4, 8, 12, 16, 24, 32], base.batch_size,
                                            key="train-batch", help="Patches per step; lower it if memory runs out."),
              "epochs": b.number_input("Most epochs", 1, 10_000, base.epochs, key="train-epochs",
                                       help="Training stops earlier when validation Dice stops improving."),
              "minutes": c.number_input("Time budget (minutes, 0 = none)", 0.0, 10_080.0, base.minutes, 1.0,
                                        key="train-minutes", help="Stops cleanly when the time is up.")}
    a, b, c = st.columns(3)
    if LR_KEY not in st.session_state:
        st.session_state[LR_KEY] = base.learning_rate
    values["learning_rate"] = a.number_input("Learning rate", 1e-6, 1.0, key=LR_KEY, format="%.5f",
                                             help="Step size. Too high: the loss jumps or becomes NaN; too low: "
                                                  "slow. The learning-rate finder suggests one.")
    values["loss"] = b.selectbox("Loss", list(LOSS_HELP), list(LOSS_HELP).index(base.loss), key="train-loss",
                                 help="\n\n".join(f"**{k}**: {v}" for k, v in LOSS_HELP.items()))
    values["optimizer"] = c.selectbox("Optimiser", ["adam", "adamw", "sgd"], key="train-optimizer",
                                      help="Adam is a safe default.")
    a, b, c = st.columns(3)
    values["lr_patience"] = a.number_input("Lower the rate after (epochs without progress)", 1, 100,
                                           base.lr_patience, key="train-lrpat")
    values["early_stopping"] = b.number_input("Stop after (epochs without progress)", 1, 1000, base.early_stopping,
                                              key="train-early")
    values["precision"] = c.selectbox("Precision", ["auto", "float32", "bfloat16", "float16"], key="train-precision",
                                      help="auto: float16 on GPUs; bfloat16 on CPUs where it measures faster; "
                                           "else float32.")
    a, b = st.columns(2)
    values["seed"] = a.number_input("Seed", 0, 2**31 - 1, base.seed, key="train-seed")
    values["deterministic"] = b.toggle("Reproducible (slower)", base.deterministic, key="train-det",
                                       help="Same seed, same result, bit for bit.")
    return values


def train_form(datasets: list[str], default_dataset: str | None = None) -> TrainConfig | None:
    """Draw the form; return the validated config, or None with the problem shown."""
    data_root = context.settings().data_root
    dataset = st.selectbox("Dataset", datasets, index=datasets.index(default_dataset)
                           if default_dataset in datasets else 0, key="train-dataset")
    preset = st.segmented_control("Preset", list(PRESETS) + ["custom"], default="quick", key="train-preset",
                                  help="\n\n".join(f"**{k}**: {v}" for k, v in PRESET_HELP.items())) or "quick"
    augment_names = list_presets(data_root)
    augment = st.selectbox("Augmentation", augment_names, index=augment_names.index(DEFAULT_PRESET),
                           key="train-augment", help="Presets from the Augment page.")
    try:
        base = preset_config("quick" if preset == "custom" else preset, dataset, data_root)
        custom = preset == "custom"
        overrides = dict(base.to_dict())
        overrides["preset"] = preset  # custom starts from quick's values but is recorded as custom
        with st.expander("Advanced settings", expanded=custom, icon=":material/tune:"):
            if not custom:
                st.caption(f"Preset *{preset}*: {PRESET_HELP[preset]} Choose *custom* to change anything.")
            overrides["model"] = {**overrides["model"], **_model_fields(base.model, custom)}
            if custom:
                overrides["data"] = {**overrides["data"], **_data_fields(base.data)}
                overrides.update(_training_fields(base))
                _apply_seed_settings(overrides)
        overrides["augment"] = load_preset(data_root, augment).to_dict()
        overrides["augment_preset"] = augment
        return TrainConfig.from_dict(overrides)
    except ConfigError as exc:
        st.error(f"Setting not accepted: {exc}")
        return None


def _apply_seed_settings(overrides: dict) -> None:
    """Apply the [model]/[train] values of a seed config imported on the Augment page, if the user wants them."""
    training = st.session_state.get(SEED_TRAINING_KEY)
    if not training or not st.toggle("Use the [model]/[train] values of the imported config file",
                                     key="train-seed-apply"):
        return
    fields, notes = from_seed_keys(training)
    st.caption("; ".join(notes))
    for section in ("model", "data"):
        overrides[section] = {**overrides[section], **fields.pop(section, {})}
    overrides.update(fields)
