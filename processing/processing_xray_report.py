"""Processor joining the BioViL-T image processor and the GPT-2 tokenizer of the report model."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin

LABEL_IGNORE_INDEX = -100


class XrayReportProcessor(ProcessorMixin):
    r"""
    Builds model inputs from studies and report texts, and turns generated ids back into report text.

    - `processor(images=...)` → `pixel_values`, `view_mask` (+ `previous_pixel_values`, `previous_mask`), see
      `BioViLTImageProcessor` for the accepted image structures.
    - `processor(images=..., text_target=reports)` → the same plus `labels` `(batch_size, target_length)`: each
      report tokenised, EOS appended (the model must learn to stop), right-padded with -100.
    - `processor.batch_decode(generated_ids)` → clean report strings.

    Args:
        image_processor (`BioViLTImageProcessor`): the image side.
        tokenizer (`PreTrainedTokenizerBase`): the report tokenizer (GPT-2's or one learnt from the reports),
            set up by `processing.prepare_report_tokenizer` (its pad token differs from EOS).
        max_target_length (`int`, *optional*, defaults to 128): longest label sequence, EOS included.
    """

    def __init__(self, image_processor: Any = None, tokenizer: Any = None, max_target_length: int = 128, **kwargs: Any):
        if max_target_length < 2:
            raise ValueError(f"max_target_length must be at least 2, got {max_target_length}.")
        self.max_target_length = max_target_length
        super().__init__(image_processor, tokenizer, **kwargs)

    def __call__(
        self,
        images: Any = None,
        text_target: str | Sequence[str] | None = None,
        previous_images: Sequence[Any] | None = None,
        return_tensors: str | None = "pt",
        **kwargs: Any,
    ) -> BatchFeature:
        if images is None and text_target is None:
            raise ValueError("Pass images, text_target (report texts), or both.")
        data: dict[str, Any] = {}
        if images is not None:
            data.update(self.image_processor(images, previous_images=previous_images, return_tensors=None, **kwargs))
        if text_target is not None:
            data["labels"] = self.make_labels(text_target)
            if images is not None and len(data["labels"]) != len(data["pixel_values"]):
                raise ValueError(f"Got {len(data['pixel_values'])} studies but {len(data['labels'])} reports.")
        return BatchFeature(data=data, tensor_type=return_tensors)

    def make_labels(self, reports: str | Sequence[str]) -> np.ndarray:
        """Token ids of each report followed by EOS, right-padded with -100; shape `(batch_size, target_length)`."""
        reports = [reports] if isinstance(reports, str) else list(reports)
        empty = [index for index, report in enumerate(reports) if not isinstance(report, str) or not report.strip()]
        if empty:
            raise ValueError(f"Empty or non-text report(s) at position(s) {empty}: every target needs text.")
        token_lists = self.tokenizer(reports, add_special_tokens=False)["input_ids"]
        limit = self.max_target_length - 1
        sequences = [ids[:limit] + [self.tokenizer.eos_token_id] for ids in token_lists]
        labels = np.full((len(sequences), max(map(len, sequences))), LABEL_IGNORE_INDEX, dtype=np.int64)
        for row, ids in enumerate(sequences):
            labels[row, : len(ids)] = ids
        return labels

    def batch_decode(self, sequences: Any, **kwargs: Any) -> list[str]:
        """Decodes generated ids (special tokens and -100 dropped) into reports with normalised whitespace."""
        sequences = np.asarray(sequences.cpu() if hasattr(sequences, "cpu") else sequences)
        sequences = np.where(sequences == LABEL_IGNORE_INDEX, self.tokenizer.eos_token_id, sequences)
        kwargs.setdefault("skip_special_tokens", True)
        texts = self.tokenizer.batch_decode(sequences.tolist(), **kwargs)
        return [clean_report_text(text) for text in texts]

    @staticmethod
    def clean_text(text: str) -> str:
        """The whitespace normalisation `batch_decode` applies (see `clean_report_text`)."""
        return clean_report_text(text)

    def decode(self, sequence: Any, **kwargs: Any) -> str:
        sequence = np.asarray(sequence.cpu() if hasattr(sequence, "cpu") else sequence)
        return self.batch_decode(sequence[None], **kwargs)[0]

    @property
    def model_input_names(self) -> list[str]:
        return list(self.image_processor.model_input_names) + ["labels"]


def clean_report_text(text: str) -> str:
    """Collapses whitespace and removes spaces before punctuation."""
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"\s+([.,;:])", r"\1", text)


__all__ = ["XrayReportProcessor", "clean_report_text"]
