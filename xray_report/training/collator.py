"""Turns dataset rows (decoded PIL images + report text) into exactly the report model's inputs.

Why a collator and not `datasets.map`: the builder stores each image as a PNG already shrunk to a short side of
512 (`image_short_side`), so decoding plus resize/crop per batch costs little next to the model's step, and with
`dataloader_num_workers > 0` it runs in worker processes in parallel with training. Pre-computing float pixel
arrays with `map` would store 448x448x3x4 bytes (2.4 MB) per view, about 50x the PNG, and gains nothing.
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from transformers.models.vision_encoder_decoder.modeling_vision_encoder_decoder import shift_tokens_right

from processing import LABEL_IGNORE_INDEX, XrayReportProcessor
from xray_report.evaluation import Label, label_report

logger = logging.getLogger(__name__)

MODEL_INPUTS: tuple[str, ...] = ("pixel_values", "view_mask", "labels", "decoder_input_ids", "decoder_attention_mask")
TEMPORAL_INPUTS: tuple[str, ...] = ("previous_pixel_values", "previous_mask")
OBSERVATION_LABELS = "observation_labels"
CONTEXT_COLUMN = "indication"
PROMPT_INPUTS: tuple[str, ...] = ("prompt_input_ids", "prompt_attention_mask")
"""A context model's generation prompts, for evaluation and prediction (`XrayReportTrainer` takes them out of the
model's inputs)."""


@functools.lru_cache(maxsize=1 << 16)
def _report_labels(report: str) -> dict[str, Label]:
    return label_report(report)  # every epoch labels the same reports again


def observation_targets(reports: Sequence[str], names: Sequence[str]) -> torch.Tensor:
    """`(len(reports), len(names))` float32: 1 where the CheXpert labeler finds the observation positive in the
    report, 0 where it finds it negative, uncertain or unmentioned (the rule of the CE metrics).

    Raises:
        KeyError: a name the labeler does not know.
    """
    rows = []
    for report in reports:
        labels = _report_labels(report)
        rows.append([float(labels[name] == Label.POSITIVE) for name in names])
    return torch.tensor(rows, dtype=torch.float32).reshape(len(reports), len(names))


class XrayReportCollator:
    """Collates rows with `frontal`, `lateral` (or None), `report` and optionally `previous_frontal`.

    Output (a dict of tensors, nothing else):
        - `pixel_values` `(batch_size, num_views, 3, H, W)` float32 in [0, 1], zeros for an absent view;
        - `view_mask` `(batch_size, num_views)` bool;
        - `labels` `(batch_size, target_length)` int64: report tokens + EOS, padded with -100;
        - `decoder_input_ids` `(batch_size, target_length)`: the labels shifted right behind the decoder start
          token (what the model would build itself), and `decoder_attention_mask` marking its non-padding positions
          (padding is never attended to; passing the mask is what GPT-2 asks for);
        - when `use_previous_image`: `previous_pixel_values` `(batch_size, 3, H, W)` and `previous_mask`
          `(batch_size,)`, in every batch (zeros and False where a study has no prior), so that every parameter
          of the temporal encoder takes part in each step (DDP needs that);
        - when `observation_names` is given: `observation_labels` `(batch_size, len(observation_names))` float32,
          `observation_targets` of the reports;
        - when `context_max_tokens` > 0 (a model that reads context): `decoder_input_ids` / `labels` hold each
          study's prompt (its `indication`, or none) before the report, `labels` -100 over the prompt; and
          `prompt_input_ids` / `prompt_attention_mask` `(batch_size, context_max_tokens + 2)`, the same prompts
          left-padded for `generate`.

    Args:
        processor: the model's `XrayReportProcessor`.
        use_previous_image: whether the model has BioViL-T's temporal pooler.
        report_column: the column with the target text.
        observation_names: the model's `config.observation_names` (models with an observation head).
        context_max_tokens: the model's `config.context_max_tokens` (0: the model reads no context).
        context_dropout: the chance that a study's context is left out (training batches only: the trainer's
            training collator has it, evaluation gets 0); drawn with Python's `random`, which transformers' seed
            and each data-loader worker's seed set.
    """

    def __init__(
        self,
        processor: XrayReportProcessor,
        use_previous_image: bool,
        report_column: str = "report",
        observation_names: Sequence[str] | None = None,
        context_max_tokens: int = 0,
        context_dropout: float = 0.0,
    ) -> None:
        self.processor = processor
        self.use_previous_image = use_previous_image
        self.report_column = report_column
        self.observation_names = tuple(observation_names or ())
        self.context_max_tokens = context_max_tokens
        self.context_dropout = context_dropout
        self._warned_unused_prior = False

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        if not rows:
            raise ValueError("cannot collate an empty batch")
        missing = [name for name in ("frontal", self.report_column) if name not in rows[0]]
        if missing:
            raise KeyError(f"dataset rows lack column(s) {missing}; got {sorted(rows[0])}")
        studies = [[row["frontal"], row.get("lateral")] for row in rows]
        reports = [row[self.report_column] for row in rows]
        previous = None
        if self.use_previous_image:
            previous = [row.get("previous_frontal") for row in rows]
        elif any(row.get("previous_frontal") is not None for row in rows) and not self._warned_unused_prior:
            logger.warning("rows carry previous_frontal images but the model has no temporal pooler "
                           "(use_previous_image=False): the priors are not used")
            self._warned_unused_prior = True
        context = self._contexts(rows) if self.context_max_tokens else None
        features = self.processor(images=studies, text_target=reports, previous_images=previous, return_tensors="pt",
                                  context=context, context_max_tokens=self.context_max_tokens)
        tokenizer = self.processor.tokenizer
        labels = features["labels"]
        if context is None:
            features["decoder_input_ids"] = shift_tokens_right(labels, tokenizer.pad_token_id, tokenizer.bos_token_id)
            features["decoder_attention_mask"] = torch.cat(
                [torch.ones_like(labels[:, :1]), (labels[:, :-1] != LABEL_IGNORE_INDEX).long()], dim=1
            )
        names = MODEL_INPUTS + (TEMPORAL_INPUTS if self.use_previous_image else ())
        batch = {name: features[name] for name in names}
        if context is not None:
            prompts = self.processor.generation_prompts(context, self.context_max_tokens)
            batch["prompt_input_ids"] = torch.as_tensor(prompts["decoder_input_ids"])
            batch["prompt_attention_mask"] = torch.as_tensor(prompts["decoder_attention_mask"])
        if self.observation_names:
            batch[OBSERVATION_LABELS] = observation_targets(reports, self.observation_names)
        return batch


    def _contexts(self, rows: Sequence[Mapping[str, Any]]) -> list[str | None]:
        """Each row's indication, left out with probability `context_dropout`."""
        return [None if self.context_dropout and random.random() < self.context_dropout else row.get(CONTEXT_COLUMN)
                for row in rows]


__all__ = ["CONTEXT_COLUMN", "MODEL_INPUTS", "OBSERVATION_LABELS", "PROMPT_INPUTS", "TEMPORAL_INPUTS",
           "XrayReportCollator", "observation_targets"]
