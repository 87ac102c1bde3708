"""Image processor reproducing BioViL-T's inference transform, for studies of one or two views plus a prior."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from transformers.feature_extraction_utils import BatchFeature
from transformers.image_processing_backends import PilBackend
from transformers.image_utils import PILImageResampling
from PIL import Image

from .image_loading import DEFAULT_IMAGE_LIMITS, ImageLimits, XrayImageError, load_xray_image


class BioViLTImageProcessor(PilBackend):
    r"""
    BioViL-T's inference transform (hi-ml's `create_chest_xray_transform_for_inference(512, 448)`):
    8-bit grayscale (min-max, `image_loading`'s policy), resize the short side to 512 (bilinear, PIL), centre-crop
    448, scale to [0, 1], repeat to 3 channels. No mean/std normalisation. The resize and crop run on the single gray
    channel; the channel is repeated last.

    Input structure: `images` is one study or a list of studies. A study is a single image (frontal only) or a
    sequence of up to `num_views` views, frontal first; a missing non-frontal view may be `None`. An image is a
    path (PNG, JPEG, DICOM), a PIL image, a numpy array or a tensor (see `image_loading`).

    Returns a `BatchFeature` with:
        - `pixel_values` of shape `(batch_size, num_views, 3, crop, crop)` (zeros where a view is absent),
        - `view_mask` of shape `(batch_size, num_views)`, `True` where a view is present,
        - with `previous_images` (one entry per study: an image, or `None` for a study without a prior):
          `previous_pixel_values` `(batch_size, 3, crop, crop)` (zeros where there is none) and `previous_mask`
          `(batch_size,)`.

    Args:
        num_views (`int`, *optional*, defaults to 2): views per study in the output.
        size (`dict`, *optional*, defaults to `{"shortest_edge": 512}`), crop_size (`dict`, *optional*, defaults
        to `{"height": 448, "width": 448}`) and the other `ImagesKwargs` of transformers' image processors.
    """

    model_input_names = ["pixel_values", "view_mask", "previous_pixel_values", "previous_mask"]
    resample = PILImageResampling.BILINEAR
    size = {"shortest_edge": 512}
    default_to_square = False
    crop_size = {"height": 448, "width": 448}
    do_resize = True
    do_center_crop = True
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = False
    do_convert_rgb = False  # gray stays one channel through resize and crop; repeated to 3 at the end

    def __init__(self, num_views: int = 2, **kwargs: Any) -> None:
        if num_views not in (1, 2):
            raise ValueError(f"num_views must be 1 or 2, got {num_views}.")
        super().__init__(**kwargs)
        self.num_views = num_views

    def preprocess(  # type: ignore[override]
        self,
        images: Any,
        previous_images: Sequence[Any] | None = None,
        return_tensors: str | None = "pt",
        image_limits: ImageLimits = DEFAULT_IMAGE_LIMITS,
        **kwargs: Any,
    ) -> BatchFeature:
        """Args:
            image_limits: the largest image and aspect ratio accepted (`ImageLimits`), for every input kind.
        """
        studies = self._as_studies(images)
        pixel_values, view_mask = self._process_studies(studies, image_limits, **kwargs)
        data: dict[str, Any] = {"pixel_values": pixel_values, "view_mask": view_mask}
        if previous_images is not None:
            if len(previous_images) != len(studies):
                raise ValueError(f"Got {len(previous_images)} previous images for {len(studies)} studies.")
            previous, previous_mask = self._process_studies([[image] for image in previous_images], image_limits,
                                                            **kwargs)
            data["previous_pixel_values"] = previous[:, 0]
            data["previous_mask"] = previous_mask[:, 0]
        return BatchFeature(data=data, tensor_type=return_tensors)

    def resize_for_model(self, image: Image.Image) -> Image.Image:
        """`image` (8-bit gray) resized exactly as `preprocess` resizes it (shortest edge, resample), or itself when it
        is no larger: `preprocess` then leaves it as it is, so a caller can shrink a large image early (and hold
        far less memory) without changing what the model sees."""
        size = self._standardize_kwargs(size=self.size)["size"]
        if not self.do_resize or not size.shortest_edge or min(image.size) <= size.shortest_edge:
            return image
        resized = self.resize(np.asarray(image)[None], size=size, resample=self.resample)  # (1, H, W), channels first
        return Image.fromarray(np.asarray(resized)[0])

    def _process_studies(self, studies: list[list[Any]], limits: ImageLimits = DEFAULT_IMAGE_LIMITS,
                         **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
        """Loads and transforms the present views; (B, V, 3, H, W) float32 values and a (B, V) bool mask."""
        present: list[tuple[int, int]] = []
        loaded = []
        for study_index, views in enumerate(studies):
            for view_index, view in enumerate(views):
                if view is not None:
                    present.append((study_index, view_index))
                    loaded.append(load_xray_image(view, limits))
        crop = self._crop_shape(kwargs.get("crop_size"))
        pixel_values = np.zeros((len(studies), self.num_views, 3, *crop), dtype=np.float32)
        view_mask = np.zeros((len(studies), self.num_views), dtype=bool)
        if loaded:
            processed = super().preprocess(loaded, return_tensors=None, **kwargs)["pixel_values"]
            for (study_index, view_index), image in zip(present, processed):
                pixel_values[study_index, view_index] = image  # (1, H, W) gray broadcast to the 3 channels
                view_mask[study_index, view_index] = True
        return pixel_values, view_mask

    def _as_studies(self, images: Any) -> list[list[Any]]:
        """Normalises the accepted input structures to a list of studies, each a list of `num_views` entries."""
        if _is_single_image(images):
            images = [images]
        if not isinstance(images, (list, tuple)) or len(images) == 0:
            raise ValueError("images must be an image, a study (a list of views) or a non-empty list of studies.")
        studies = []
        for index, study in enumerate(images):
            views = [study] if _is_single_image(study) else list(study)
            if not 1 <= len(views) <= self.num_views:
                raise ValueError(f"Study {index} has {len(views)} views; this processor takes 1 to {self.num_views}.")
            if views[0] is None:
                raise XrayImageError(f"Study {index} has no frontal view (view 0 is None); a frontal image is required.")
            studies.append(views + [None] * (self.num_views - len(views)))
        return studies

    def _crop_shape(self, crop_size: Any) -> tuple[int, int]:
        crop = self._standardize_kwargs(crop_size=crop_size or self.crop_size)["crop_size"]
        return crop.height, crop.width


def _is_single_image(value: Any) -> bool:
    return not isinstance(value, (list, tuple)) and value is not None


__all__ = ["BioViLTImageProcessor"]
