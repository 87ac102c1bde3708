"""A transformers pipeline that turns chest X-ray studies into report text.

Published with the model as remote code and declared in `config.json` under `custom_pipelines`, so that

    from transformers import pipeline
    generator = pipeline("image-to-text", model="ORG/NAME", trust_remote_code=True)
    generator("frontal.png")  # [{"generated_text": "..."}]

works on an image alone (transformers 5's built-in `image-to-text` maps to `image-text-to-text`, which needs a
text prompt). Inputs: an image (path, PIL image, array), a study dict `{"frontal": ..., "lateral": ...,
"previous": ...}` (lateral and previous optional), or a list of either.

Research use only: not a medical device.
"""

from __future__ import annotations

from typing import Any

from transformers import Pipeline

PIPELINE_TASK = "image-to-text"
STUDY_KEYS = ("frontal", "lateral", "previous")


class XrayReportPipeline(Pipeline):
    """Study in, `[{"generated_text": report}]` out; generation keywords (`max_new_tokens`, `num_beams`, …) pass through."""

    _load_processor = True
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False
    _pipeline_calls_generate = True
    _default_generation_config = None  # the model's own generation_config.json applies

    def _sanitize_parameters(self, **generate_kwargs: Any) -> tuple[dict, dict, dict]:
        return {}, generate_kwargs, {}

    def preprocess(self, study: Any) -> dict[str, Any]:
        if isinstance(study, dict):
            unknown = set(study) - set(STUDY_KEYS)
            if unknown or "frontal" not in study:
                raise ValueError(f"A study dict needs 'frontal' and may have 'lateral', 'previous'; got {sorted(study)}.")
            views = [study["frontal"], study.get("lateral")]
            previous = study.get("previous")
        else:
            views, previous = [study], None
        previous_images = [previous] if previous is not None else None
        return dict(self.processor(images=[views], previous_images=previous_images, return_tensors="pt"))

    def _forward(self, model_inputs: dict[str, Any], **generate_kwargs: Any) -> Any:
        model_inputs = {name: value.to(self.device) for name, value in model_inputs.items()}
        return self.model.generate(**model_inputs, **self._generate_kwargs, **generate_kwargs)

    def postprocess(self, generated_ids: Any) -> list[dict[str, str]]:
        return [{"generated_text": text} for text in self.processor.batch_decode(generated_ids)]


__all__ = ["PIPELINE_TASK", "XrayReportPipeline"]
