"""Processor joining the BioViL-T image processor and the GPT-2 tokenizer of the report model.

Clinical context (the indication: why the study was taken) goes to the decoder as a prompt before the report:
``[BOS] context tokens [BOS] report tokens [EOS]``, the prompt left out of the loss. A study without context has the
prompt ``[BOS]`` alone, exactly the input of a model that never reads context, so one model writes reports with and
without it (it is trained with some contexts dropped). `clean_context` removes the collection's ``XXXX``
de-identification masks; at most `context_max_tokens` tokens of a context are kept (its start).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin

LABEL_IGNORE_INDEX = -100
_DEIDENTIFICATION_MASK = re.compile(r"X{2,}")


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
        context: Sequence[str | None] | None = None,
        context_max_tokens: int = 0,
        **kwargs: Any,
    ) -> BatchFeature:
        """Model inputs of studies and, with `text_target`, their training targets.

        Args:
            context: per study, the clinical context (the indication) or None / "" for none; used when
                `context_max_tokens` > 0 (the model's `config.context_max_tokens`), else ignored. With
                `text_target`: `decoder_input_ids` and `decoder_attention_mask` `(batch_size, length)` hold each
                study's prompt and report, right-padded, and `labels` are -100 over the prompt. Without: they hold
                the prompts alone, left-padded to `context_max_tokens + 2`, for `generate`.
            context_max_tokens: the longest context kept, in tokens (0: the model reads no context).
        """
        if images is None and text_target is None:
            raise ValueError("Pass images, text_target (report texts), or both.")
        data: dict[str, Any] = {}
        if images is not None:
            data.update(self.image_processor(images, previous_images=previous_images, return_tensors=None, **kwargs))
        prompts = self.context_prompts(context, context_max_tokens) if context is not None and context_max_tokens else None
        if text_target is not None:
            data["labels"] = self.make_labels(text_target)
            if images is not None and len(data["labels"]) != len(data["pixel_values"]):
                raise ValueError(f"Got {len(data['pixel_values'])} studies but {len(data['labels'])} reports.")
            if prompts is not None:
                data.update(self._prompted_targets(prompts, data["labels"]))
        elif prompts is not None:
            data.update(self._left_padded(prompts, context_max_tokens + 2))
        if prompts is not None and images is not None and len(prompts) != len(data["pixel_values"]):
            raise ValueError(f"Got {len(data['pixel_values'])} studies but {len(prompts)} contexts.")
        return BatchFeature(data=data, tensor_type=return_tensors)

    def context_prompts(self, context: Sequence[str | None], context_max_tokens: int) -> list[list[int]]:
        """Per study the decoder prompt: ``[BOS]``, or ``[BOS] context tokens [BOS]`` for a cleaned, non-empty context
        (at most `context_max_tokens` of its tokens, from its start)."""
        bos = self.tokenizer.bos_token_id
        prompts = []
        for text in context:
            cleaned = clean_context(text) if isinstance(text, str) else ""
            ids = self.tokenizer(cleaned, add_special_tokens=False)["input_ids"][:context_max_tokens] if cleaned else []
            prompts.append([bos, *ids, bos] if ids else [bos])
        return prompts

    def _prompted_targets(self, prompts: list[list[int]], labels: np.ndarray) -> dict[str, np.ndarray]:
        """Teacher-forcing inputs ``prompt + report`` and labels -100 over the prompt (the model predicts the report
        from the prompt's last token on), right-padded."""
        rows = []
        for prompt, row in zip(prompts, labels):
            report = [int(token) for token in row if token != LABEL_IGNORE_INDEX]  # report ids + EOS
            rows.append((prompt + report[:-1], [LABEL_IGNORE_INDEX] * (len(prompt) - 1) + report))
        width = max(len(inputs) for inputs, _ in rows)
        decoder_input_ids = np.full((len(rows), width), self.tokenizer.pad_token_id, dtype=np.int64)
        attention = np.zeros((len(rows), width), dtype=np.int64)
        new_labels = np.full((len(rows), width), LABEL_IGNORE_INDEX, dtype=np.int64)
        for index, (inputs, targets) in enumerate(rows):
            decoder_input_ids[index, : len(inputs)] = inputs
            attention[index, : len(inputs)] = 1
            new_labels[index, : len(targets)] = targets
        return {"decoder_input_ids": decoder_input_ids, "decoder_attention_mask": attention, "labels": new_labels}

    def generation_prompts(self, context: Sequence[str | None], context_max_tokens: int) -> dict[str, np.ndarray]:
        """`decoder_input_ids` and `decoder_attention_mask` `(batch_size, context_max_tokens + 2)`: each study's
        prompt (`context_prompts`) left-padded for `generate`."""
        return self._left_padded(self.context_prompts(context, context_max_tokens), context_max_tokens + 2)

    def _left_padded(self, prompts: list[list[int]], width: int) -> dict[str, np.ndarray]:
        """Prompts left-padded to `width` with BOS (masked out), so that every study's first generated token follows
        its own last prompt token, and `generate` sees the start token first."""
        bos = self.tokenizer.bos_token_id
        decoder_input_ids = np.full((len(prompts), width), bos, dtype=np.int64)
        attention = np.zeros((len(prompts), width), dtype=np.int64)
        for index, prompt in enumerate(prompts):
            decoder_input_ids[index, width - len(prompt):] = prompt
            attention[index, width - len(prompt):] = 1
        return {"decoder_input_ids": decoder_input_ids, "decoder_attention_mask": attention}

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


def clean_context(text: str) -> str:
    """A clinical context as the model reads it: the collection's ``XXXX`` de-identification masks removed, whitespace
    collapsed, and leading or trailing punctuation left by a removed mask dropped ("" when nothing is left)."""
    text = re.sub(r"\s+", " ", _DEIDENTIFICATION_MASK.sub(" ", text)).strip()
    text = re.sub(r"\s+([.,;:])", r"\1", text)
    return text.strip(" -,;:") if any(character.isalnum() for character in text) else ""


def clean_report_text(text: str) -> str:
    """Collapses whitespace and removes spaces before punctuation."""
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"\s+([.,;:])", r"\1", text)


__all__ = ["XrayReportProcessor", "clean_context", "clean_report_text"]
