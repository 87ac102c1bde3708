"""Configuration of the BioViL-T image encoder (hi-ml-multimodal) wrapped for transformers."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

# hi-ml's MultiImageEncoder projects the backbone to 256 channels and concatenates
# [static | temporal-difference] features, so every patch token has 2 x 256 = 512 channels.
BIOVIL_T_PATCH_CHANNELS = 512
# hi-ml's temporal ViT pooler is built for a fixed 14 x 14 patch grid (448 px / stride 32).
BIOVIL_T_TEMPORAL_IMAGE_SIZE = 448
BACKBONE_STRIDE = 32
MIN_LOCAL_PATCH_SIZE = 16  # a ResNet's stem and stages reduce a 16 px tile to one cell
SUPPORTED_IMAGE_ENCODER_TYPES = ("resnet50_multi_image", "resnet18_multi_image")


@strict
class BioViLTConfig(PreTrainedConfig):
    r"""
    Configuration of [`BioViLTModel`], the BioViL-T image encoder used as the vision side of the report model.

    Args:
        image_encoder_type (`str`, *optional*, defaults to `"resnet50_multi_image"`):
            hi-ml-multimodal encoder type. `"resnet50_multi_image"` is the real BioViL-T trunk;
            `"resnet18_multi_image"` is a smaller variant for fast experiments and tests.
        image_size (`int`, *optional*, defaults to 448):
            Side of the square input images. Must be a multiple of 32 (of `local_patch_size` when set); 448 when
            `use_previous_image=True` (hi-ml's temporal pooler has a fixed 14 x 14 grid).
        num_views (`int`, *optional*, defaults to 2):
            Maximum number of views per study (view 0 is frontal, view 1 lateral).
        use_previous_image (`bool`, *optional*, defaults to `True`):
            Keep BioViL-T's temporal pooler so that a prior study's frontal image can be passed as
            `previous_pixel_values`. When `False` the pooler is not built and the temporal half of every
            patch token is hi-ml's learned "missing previous image" embedding.
        hidden_size (`int`, *optional*, defaults to 512):
            Channels of every patch token; fixed by hi-ml's encoder (256 static + 256 temporal).
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the truncated normal used for the view, position and missing-view embeddings.
        local_patch_size (`int`, *optional*):
            When set, every view is cut into tiles of this side (pixels; divides `image_size`, at least 16) and each
            tile goes through the backbone as an image of its own, giving one patch token that sees only its tile;
            the grid is then `image_size / local_patch_size`. By default the backbone reads the whole image and
            each token's receptive field spans it. With local tokens a finding shows only in the tokens of its
            tiles, so the decoder has to attend there to write about it. Meant for small encoders trained from
            scratch (BioViL-T's pretrained trunk reads whole images); not with `use_previous_image`.

    Example:

    ```python
    >>> from modeling import BioViLTConfig, BioViLTModel
    >>> config = BioViLTConfig(image_encoder_type="resnet18_multi_image", image_size=128, use_previous_image=False)
    >>> model = BioViLTModel(config)
    ```
    """

    model_type = "biovil_t"

    image_encoder_type: str = "resnet50_multi_image"
    image_size: int = BIOVIL_T_TEMPORAL_IMAGE_SIZE
    num_views: int = 2
    use_previous_image: bool = True
    hidden_size: int = BIOVIL_T_PATCH_CHANNELS
    initializer_range: float = 0.02
    local_patch_size: int | None = None

    @property
    def grid_size(self) -> int:
        """Side of the patch grid: image_size / 32 (the backbone's stride), or image_size / local_patch_size."""
        return self.image_size // (self.local_patch_size or BACKBONE_STRIDE)

    @property
    def num_patches_per_view(self) -> int:
        return self.grid_size * self.grid_size

    def validate_architecture(self) -> None:
        """Turns hi-ml's hidden constants into explicit errors."""
        if self.image_encoder_type not in SUPPORTED_IMAGE_ENCODER_TYPES:
            raise ValueError(
                f"image_encoder_type must be one of {SUPPORTED_IMAGE_ENCODER_TYPES}, got {self.image_encoder_type!r}."
            )
        side = self.local_patch_size or BACKBONE_STRIDE
        if self.image_size <= 0 or self.image_size % side != 0:
            raise ValueError(f"image_size must be a positive multiple of {side} (the "
                             f"{'local patch size' if self.local_patch_size else 'backbone stride'}), got {self.image_size}.")
        if self.use_previous_image and self.image_size != BIOVIL_T_TEMPORAL_IMAGE_SIZE:
            raise ValueError(
                f"use_previous_image=True needs image_size={BIOVIL_T_TEMPORAL_IMAGE_SIZE}: BioViL-T's temporal pooler has "
                f"a fixed 14x14 patch grid. Got image_size={self.image_size}; set use_previous_image=False for other sizes."
            )
        if self.local_patch_size is not None:
            if self.local_patch_size < MIN_LOCAL_PATCH_SIZE:
                raise ValueError(f"local_patch_size must be at least {MIN_LOCAL_PATCH_SIZE}, got {self.local_patch_size}.")
            if self.use_previous_image:
                raise ValueError("local_patch_size cannot be combined with use_previous_image=True: BioViL-T's "
                                 "temporal pooler compares whole images.")
        if self.num_views not in (1, 2):
            raise ValueError(f"num_views must be 1 (frontal) or 2 (frontal + lateral), got {self.num_views}.")
        if self.hidden_size != BIOVIL_T_PATCH_CHANNELS:
            raise ValueError(
                f"hidden_size is fixed at {BIOVIL_T_PATCH_CHANNELS} by hi-ml's encoder (256 static + 256 temporal "
                f"channels), got {self.hidden_size}."
            )


__all__ = ["BioViLTConfig"]
