"""Random image augmentation of training batches (`image_augmentation: true`).

Each present view of a study gets its own random affine transform (rotation, translation, scale; nearest-neighbour
resampling, torchvision's default, and the border filled with black) and brightness / contrast change, the ranges
usual for chest X-rays. No flips: a mirrored film would
contradict a report that names a side. Evaluation and generation never see augmented images: the trainer applies
this in its training step only.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch
from torchvision.transforms import v2


@dataclass(frozen=True)
class ImageAugmentation:
    """Random transform of the views of a batch, drawn from torch's global generator (seeded by the trainer).

    Attributes:
        degrees: largest rotation, either way.
        translate: largest shift, as a fraction of the image's width and height.
        scale: range of the zoom factor.
        brightness / contrast: largest relative change (ColorJitter's factors, drawn from `[1 - x, 1 + x]`).
    """

    degrees: float = 10.0
    translate: float = 0.05
    scale: tuple[float, float] = (0.9, 1.1)
    brightness: float = 0.2
    contrast: float = 0.2

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", tuple(float(value) for value in self.scale))
        if len(self.scale) != 2 or not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError(f"scale must be two zoom factors 0 < low <= high, got {self.scale}")
        if self.degrees < 0 or not 0 <= self.translate <= 1:
            raise ValueError(f"degrees must be >= 0 and translate in [0, 1], got {self.degrees} and {self.translate}")
        if not (0 <= self.brightness < 1 and 0 <= self.contrast < 1):
            raise ValueError(f"brightness and contrast must be in [0, 1), got {self.brightness} and {self.contrast}")

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any] | None) -> "ImageAugmentation":
        """The augmentation with the ranges of `kwargs` (`image_augmentation_kwargs`) and the defaults elsewhere.

        Raises:
            ValueError: an unknown name or a value out of range.
        """
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(kwargs or {}) - known)
        if unknown:
            raise ValueError(f"unknown image augmentation setting(s) {unknown}; known: {sorted(known)}")
        return cls(**(kwargs or {}))

    def transform(self) -> v2.Transform:
        """The torchvision transform of one image `(3, H, W)`; each call of it draws new parameters."""
        return v2.Compose([
            v2.RandomAffine(degrees=self.degrees, translate=(self.translate, self.translate), scale=self.scale, fill=0),
            v2.ColorJitter(brightness=self.brightness, contrast=self.contrast),
        ])

    def __call__(self, pixel_values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Augments the present images of `pixel_values`.

        Args:
            pixel_values: `(..., 3, H, W)` float in [0, 1], e.g. `(batch_size, num_views, 3, H, W)`.
            mask: `pixel_values.shape[:-3]` bool, True where an image is present.

        Returns:
            A new tensor of the same shape and dtype: every present image transformed with its own random draw
            (values stay in [0, 1]); absent images (zeros) unchanged.

        Raises:
            ValueError: the mask's shape does not match, or the images are not floating point.
        """
        if tuple(mask.shape) != tuple(pixel_values.shape[:-3]):
            raise ValueError(f"mask of shape {tuple(mask.shape)} does not match images of shape "
                             f"{tuple(pixel_values.shape)} (expected {tuple(pixel_values.shape[:-3])})")
        if not pixel_values.is_floating_point():
            raise ValueError(f"image augmentation needs float images in [0, 1], got {pixel_values.dtype}")
        transform = self.transform()
        images = pixel_values.reshape(-1, *pixel_values.shape[-3:]).clone()
        for index in torch.nonzero(mask.reshape(-1)).flatten().tolist():
            images[index] = transform(images[index])
        return images.reshape(pixel_values.shape)


# The image inputs of a training batch and the mask that tells which of their images are present.
AUGMENTED_INPUTS: dict[str, str] = {"pixel_values": "view_mask", "previous_pixel_values": "previous_mask"}


def augment_batch(inputs: dict[str, Any], augmentation: ImageAugmentation) -> dict[str, Any]:
    """A copy of a collated batch (`XrayReportCollator`'s output) whose images are augmented; other inputs shared."""
    augmented = dict(inputs)
    for name, mask_name in AUGMENTED_INPUTS.items():
        if name in inputs:
            augmented[name] = augmentation(inputs[name], inputs[mask_name])
    return augmented


__all__ = ["AUGMENTED_INPUTS", "ImageAugmentation", "augment_batch"]
