"""Model settings: which architecture, how wide and deep, and what the encoder starts from.

Plain Python (no TensorFlow import), so the dashboard can validate a model choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.config import ConfigError, from_dict

ModelName = Literal[
    "unet",
    "attention_unet",
    "unet_plus_plus",
    "mobilenetv2_unet",
    "deeplabv3_plus",
    "unet_lstm",
    "mobilenet_mobileunet_lstm",
]
OutputType = Literal["binary", "three_class", "distance"]
OUTPUT_HELP = {
    "binary": "Cell or background per pixel; touching cells are then split where the cell outline narrows "
    "(a distance watershed). Works with any masks.",
    "three_class": "Background, cell interior or cell boundary per pixel (softmax), so the model itself learns "
    "where one cell ends and the next begins; each interior becomes one cell. Needs masks that "
    "give each cell its own number.",
    "distance": "Cell or background, plus how deep inside its cell each pixel lies (0 at the edge, 1 at the "
    "centre); each centre becomes one cell. Needs masks that give each cell its own number.",
}
MODEL_HELP = {
    "unet": "The classic U-Net (as in the seed's TensorflowUNet): a good default for cells and nuclei.",
    "attention_unet": "U-Net whose skip connections learn where to look; helps with small objects in clutter.",
    "unet_plus_plus": "U-Net++: nested skip connections; often sharper borders, about twice the compute.",
    "mobilenetv2_unet": "A light MobileNetV2 encoder with a U-Net-style decoder: fast, good with pretrained weights.",
    "deeplabv3_plus": "DeepLabV3+ on MobileNetV2: multi-scale context; suits large, irregular regions.",
    "unet_lstm": "For time-lapse videos: a U-Net that looks at a few frames around each frame (ConvLSTM memory), "
    "so cells that blur or dim for a frame are still found.",
    "mobilenet_mobileunet_lstm": "For time-lapse videos: the light MobileNetV2 U-Net on each frame, then a ConvLSTM "
    "that combines the frames before and after; fast, good with pretrained weights.",
}
ENCODER_MODELS = ("mobilenetv2_unet", "deeplabv3_plus", "mobilenet_mobileunet_lstm")
# Models that see a window of ``time_window`` frames centred on the frame they segment (time-lapse datasets only).
RECURRENT_MODELS = ("unet_lstm", "mobilenet_mobileunet_lstm")
LOSS_HELP = {
    "bce_dice": "Cross-entropy + Dice (the seeds' bce_dice_loss): a robust default.",
    "bce": "Plain cross-entropy: fine when cells cover a good share of the image.",
    "dice": "Dice loss: optimises overlap directly; good for small foreground.",
    "focal": "Focal loss: focuses on hard pixels; for very sparse cells.",
    "tversky": "Tversky loss: penalises missed cells more than false alarms.",
    "weighted_bce": "Cross-entropy with cell pixels weighted more; for sparse cells.",
    "iou": "IoU (Jaccard) loss.",
}


@dataclass(frozen=True)
class ModelConfig:
    """The architecture and its size.

    - ``depth``: number of down-sampling levels (the seed's ``num_layers`` minus one);
    - ``first_kernel``: convolution size at the first level, shrinking by 2 per level down to 3
      (the seed's ``base_kernels``);
    - ``dropout``: dropout at the deepest level; shallower levels get proportionally less;
    - ``encoder_weights``: ``"none"``, ``"imagenet"`` (needs internet once) or a path to a weights file
      for the MobileNetV2 encoder;
    - ``output``: what the model predicts per pixel (:data:`OUTPUT_HELP`). Whatever it is, output channel 0
      is the probability of cell, so everything that only needs the foreground reads channel 0; an
      instance-aware output adds a *seed* map in channel 1 (interior probability or normalised distance)
      from which cells are grown (:mod:`core.seeded_watershed`);
    - ``boundary_width``: thickness in pixels of the boundary band of the three-class target;
    - ``time_window``: frames a recurrent model (:data:`RECURRENT_MODELS`) sees at once, centred on the frame
      it segments (odd, 3 to 15); the other models ignore it.
    """

    name: ModelName = "unet"
    base_filters: int = 16
    depth: int = 4
    first_kernel: int = 3
    dilation: int = 1
    dropout: float = 0.0
    batch_norm: bool = True
    encoder_weights: str = "none"
    encoder_alpha: float = 1.0
    output: OutputType = "binary"
    boundary_width: int = 2
    time_window: int = 5

    def __post_init__(self) -> None:
        checks = [
            ("base_filters", 4, 128),
            ("depth", 2, 6),
            ("first_kernel", 3, 11),
            ("dilation", 1, 4),
            ("dropout", 0.0, 0.6),
            ("boundary_width", 1, 8),
            ("time_window", 3, 15),
        ]
        for name, low, high in checks:
            value = getattr(self, name)
            if not low <= value <= high:
                raise ConfigError(f"{name}={value} is out of range; allowed {low} to {high}.")
        if self.first_kernel % 2 == 0:
            raise ConfigError(f"first_kernel={self.first_kernel} must be odd (3, 5, 7, …).")
        if self.time_window % 2 == 0:
            raise ConfigError(
                f"time_window={self.time_window} must be odd (3, 5, 7, …): the window is centred on the "
                "frame it segments."
            )
        if self.encoder_alpha not in (0.35, 0.5, 0.75, 1.0):
            raise ConfigError(f"encoder_alpha={self.encoder_alpha} must be one of 0.35, 0.5, 0.75, 1.0.")

    @property
    def seeded(self) -> bool:
        """Whether the model predicts a seed map next to the foreground (an instance-aware output)."""
        return self.output != "binary"

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this."""
        return 32 if self.name in ENCODER_MODELS else 2**self.depth

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        return from_dict(cls, data, section="model")

    @property
    def recurrent(self) -> bool:
        """Whether the model sees a window of ``time_window`` frames (input ``(T, H, W, C)``) rather than one image."""
        return self.name in RECURRENT_MODELS
