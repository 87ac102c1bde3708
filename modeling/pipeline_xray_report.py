"""The one path from chest X-ray studies to reports: a transformers pipeline, shipped with the model as remote code.

Declared in `config.json` under `custom_pipelines`, so that

    from transformers import pipeline
    generator = pipeline("image-to-text", model="ORG/NAME", trust_remote_code=True)
    generator("frontal.png")  # [{"generated_text": "...", "finished": True, "sentences": [...], ...}]

works on an image alone (transformers 5's built-in `image-to-text` maps to `image-text-to-text`, which needs a
text prompt). Every caller of the project (batch CLI, dashboard, quickstart, notebooks) builds this pipeline
around a loaded model, so all of them read, preprocess, generate and decode the same way.

Inputs: an image (path, PIL image, array), a study dict `{"frontal": ..., "lateral": ..., "previous": ...,
"indication": "..."}` (all but frontal optional; the indication, the clinical context, is read by models trained with
it, `config.context_max_tokens` > 0, and ignored with a note by the others), or a list of either (`batch_size=`
batches them into one `generate` call each).
Generation keywords pass through to `generate`; one report per study (`num_return_sequences` > 1 is refused).

Per study the output is a one-element list (the `image-to-text` convention the Hub widget reads) whose dict holds
`generated_text`, `finished` (EOS produced before the token limit), `num_tokens`,
`sentences` (text and character span of each sentence of `generated_text`), `notes` (inputs the model could not
use), `has_prior` (whether a prior image reached the model) and `views` (which views were present). With
`return_heatmaps=True` each sentence also gets `heatmap`, its cross-attention map `(num_views, grid, grid)` (and,
for a model with a study token, `study_token_share`, the attention that token took, and for a model with observation
tokens, `observation_token_share`, the attention those took together), and the output gets `view_images`, the processed views the maps overlay; the maps come from the attention weights of the
same `generate` call (the heatmap rule is in `cross_attention_maps`).

Research use only: not a medical device.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import torch
from transformers import Pipeline

PIPELINE_TASK = "image-to-text"
STUDY_KEYS = ("frontal", "lateral", "previous", "indication")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
"""The sentence rule of every report: a sentence ends after `.`, `!` or `?` followed by whitespace, or at a line
break (the prior-comparison flags, the section splitter and the heatmaps all split with it)."""


def split_sentence_spans(text: str) -> list[tuple[int, int]]:
    """`(start, end)` character spans of the sentences of `text` (see `SENTENCE_END`), whitespace excluded."""
    spans, start = [], 0
    for boundary in [*SENTENCE_END.finditer(text), None]:
        end = boundary.start() if boundary is not None else len(text)
        piece = text[start:end]
        if piece.strip():
            left = start + len(piece) - len(piece.lstrip())
            spans.append((left, left + len(piece.strip())))
        if boundary is not None:
            start = boundary.end()
    return spans


def _study_parts(study: Any) -> tuple[list[Any], Any, str | None]:
    """(views, prior image, indication) of one pipeline input."""
    if isinstance(study, dict):
        unknown = set(study) - set(STUDY_KEYS)
        if unknown or study.get("frontal") is None:
            raise ValueError(f"A study dict needs 'frontal' and may have 'lateral', 'previous', 'indication'; got "
                             f"{sorted(study)}.")
        indication = study.get("indication")
        if indication is not None and not isinstance(indication, str):
            raise ValueError(f"A study's 'indication' must be text, got {type(indication).__name__}.")
        return [study["frontal"], study.get("lateral")], study.get("previous"), indication
    if study is None:
        raise ValueError("A study needs a frontal image; got None.")
    return [study], None, None


def generate_with_cross_attention(model: Any, inputs: dict[str, torch.Tensor], **generate_kwargs: Any) -> Any:
    """`model.generate` returning its cross-attention weights (eager attention for the call, then restored)."""
    decoder = model.decoder
    previous = decoder.config._attn_implementation
    if previous != "eager":
        decoder.set_attn_implementation("eager")
    try:
        return model.generate(**inputs, **generate_kwargs, return_dict_in_generate=True, output_attentions=True)
    finally:
        if previous != "eager":
            decoder.set_attn_implementation(previous)


_MIN_CONCENTRATION = 1e-6  # the weight of a uniform map: a sentence of uniform maps still gets their plain mean


def attention_concentration(attention: torch.Tensor) -> torch.Tensor:
    """How far each attention distribution (last dimension) is from uniform: `1 - entropy / log(num_tokens)`.

    1 for attention on a single token, 0 for attention spread evenly over all of them (floored at a tiny positive
    value, so that a sentence whose every map is uniform still gets the plain mean).

    Args:
        attention: `torch.FloatTensor` of shape `(..., num_tokens)`, rows summing to 1.

    Returns:
        `torch.FloatTensor` of shape `(...)`, values in `(0, 1]`.
    """
    count = attention.shape[-1]
    if count < 2:
        return torch.ones(attention.shape[:-1], dtype=attention.dtype, device=attention.device)
    entropy = -(attention * attention.clamp_min(1e-12).log()).sum(dim=-1)
    return (1 - entropy / math.log(count)).clamp_min(_MIN_CONCENTRATION)


def cross_attention_maps(outputs: Any) -> torch.Tensor:
    """The heatmap rule's first step: per generated token, its cross-attention maps weighted by their concentration.

    Row `t` of a study belongs to the query that *predicted* its `t`-th generated token: the sum over layers and
    heads of each head's map (a distribution over the `num_views * grid * grid` patch tokens, view 0 first,
    row-major patch grid, then the study and observation tokens when the model has them) times its
    `attention_concentration`. A head that spreads its attention evenly says nothing about where the token looked
    and counts for almost nothing; a head that looks up one place counts fully. The row sums to the step's total
    weight; a sentence's map is the sum of its rows, divided by its total. With beam search the rows of the beam
    that produced the returned sequence are taken, step by step (`beam_indices`).

    Returns:
        `torch.FloatTensor` of shape `(batch_size, generated_length, num_tokens)`.
    """
    steps = []
    for layers in outputs.cross_attentions:  # one tuple per step, one (batch, heads, queries, tokens) per layer
        last_query = torch.stack(layers).float()[..., -1, :]  # (layers, batch, heads, tokens)
        weights = attention_concentration(last_query)
        steps.append((last_query * weights.unsqueeze(-1)).sum(dim=(0, 2)))
    per_step = torch.stack(steps, dim=1)  # (batch_size * beams, steps, tokens)
    beam_indices = getattr(outputs, "beam_indices", None)
    if beam_indices is None:
        return per_step
    beam_indices = beam_indices[:, : per_step.shape[1]].clamp(min=0)  # -1 after a sequence ended
    return per_step[beam_indices, torch.arange(beam_indices.shape[1], device=beam_indices.device)]


# The attention share of each kind of cross-attention token that lies on no view (`XrayReportModel.memory_layout`).
_SHARE_KEYS = {"study_token": "study_token_share", "observation_tokens": "observation_token_share"}


class XrayReportPipeline(Pipeline):
    """Studies in, one report dict per study out; generation keywords (`max_new_tokens`, `num_beams`, …) pass through."""

    _load_processor = True
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False
    _pipeline_calls_generate = True
    _default_generation_config = None  # the model's own generation_config.json applies

    def _sanitize_parameters(
        self, return_heatmaps: bool | None = None, image_limits: Any = None, **generate_kwargs: Any
    ) -> tuple[dict, dict, dict]:
        """`image_limits` (`processing.image_loading.ImageLimits`) go to the image processor; the rest to `generate`."""
        preprocess = {} if image_limits is None else {"image_limits": image_limits}
        forward = dict(generate_kwargs)
        postprocess = {}
        if return_heatmaps is not None:
            forward["return_heatmaps"] = postprocess["return_heatmaps"] = bool(return_heatmaps)
        max_new_tokens = forward.get("max_new_tokens")
        if max_new_tokens is not None and max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}.")
        return preprocess, forward, postprocess

    def preprocess(self, study: Any, image_limits: Any = None) -> dict[str, Any]:
        encoder_config = self.model.config.encoder
        context_max_tokens = getattr(self.model.config, "context_max_tokens", 0)
        views, previous, indication = _study_parts(study)
        notes = []
        if previous is not None and not encoder_config.use_previous_image:
            notes.append("prior image ignored: this model has no temporal pooler (use_previous_image=False)")
        if len(views) > encoder_config.num_views and views[1] is not None:
            notes.append("lateral view ignored: this model takes the frontal view only")
        if indication and indication.strip() and not context_max_tokens:
            notes.append("indication ignored: this model was trained without clinical context")
        previous_images = [previous] if encoder_config.use_previous_image else None
        inputs = self.processor(
            images=[views[: encoder_config.num_views]], previous_images=previous_images, return_tensors="pt",
            context=[indication] if context_max_tokens else None, context_max_tokens=context_max_tokens,
            **({} if image_limits is None else {"image_limits": image_limits}),
        )
        return {**inputs, "notes": notes}

    def _forward(self, model_inputs: dict[str, Any], return_heatmaps: bool = False, **generate_kwargs: Any) -> dict:
        notes = model_inputs.pop("notes")
        dtype = self.model.encoder.dtype
        inputs = {
            name: value.to(self.device, dtype=dtype if value.is_floating_point() else value.dtype)
            for name, value in model_inputs.items()
        }
        kwargs = {**self._generate_kwargs, **generate_kwargs}
        prompt_length = inputs["decoder_input_ids"].shape[1] if "decoder_input_ids" in inputs else 1
        returned = kwargs.get("num_return_sequences", self.model.generation_config.num_return_sequences) or 1
        if returned != 1:  # the pipeline splits the sequences one row per study: more would go to the wrong studies
            raise ValueError(f"The report pipeline writes one report per study; got num_return_sequences={returned}. "
                             "Call model.generate directly for several candidates per study.")
        batch_size = inputs["pixel_values"].shape[0]
        if return_heatmaps:
            outputs = generate_with_cross_attention(self.model, inputs, **kwargs)
            sequences, attention = outputs.sequences, cross_attention_maps(outputs)
        else:
            sequences, attention = self.model.generate(**inputs, **kwargs), None
        limit = kwargs.get("max_new_tokens", self.model.generation_config.max_new_tokens)
        result = {
            "sequences": sequences,
            "view_mask": inputs["view_mask"],
            "has_prior": inputs.get("previous_mask", torch.zeros(batch_size, dtype=torch.bool, device=sequences.device)),
            "limit": torch.full((batch_size,), -1 if limit is None else int(limit)),
            "prompt_length": torch.full((batch_size,), prompt_length),
            "notes": notes,
        }
        if return_heatmaps:
            result["attention"] = attention
            result["pixel_values"] = inputs["pixel_values"][:, :, 0]  # (B, V, H, W): gray is the first channel
        return result

    def postprocess(self, model_outputs: dict[str, Any], return_heatmaps: bool = False) -> list[dict[str, Any]]:
        tokenizer = self.processor.tokenizer
        # after the decoder start token, or after the context prompt
        ids = model_outputs["sequences"][0, int(model_outputs["prompt_length"][0]):].tolist()
        stops = {tokenizer.eos_token_id, tokenizer.pad_token_id}
        length = next((index for index, token in enumerate(ids) if token in stops), len(ids))
        finished = length < len(ids) and ids[length] == tokenizer.eos_token_id
        limit = int(model_outputs["limit"][0])
        finished = finished and (limit < 0 or length < limit)
        text, token_ends = _decode_with_offsets(tokenizer, ids[:length])
        report = self.processor.clean_text(text)
        sentences = _sentences(report, text, token_ends)
        output: dict[str, Any] = {
            "generated_text": report,
            "finished": bool(finished),
            "num_tokens": length,
            "sentences": [{"text": item["text"], "start": item["start"], "end": item["end"]} for item in sentences],
            "notes": list(model_outputs["notes"]),
            "has_prior": bool(model_outputs["has_prior"][0]),
            "views": [bool(value) for value in model_outputs["view_mask"][0]],
        }
        if return_heatmaps:
            attention = model_outputs["attention"][0].float().cpu()  # (T, V * g * g)
            num_views = len(output["views"])
            grid = self.model.config.encoder.grid_size
            patches = num_views * grid * grid  # the study token, then the observation tokens, follow the patches
            for target, item in zip(output["sentences"], sentences):
                tokens = item["tokens"]
                weighted = attention[tokens].sum(dim=0) if tokens else None
                sentence_map = None if weighted is None else weighted / weighted.sum()
                target["heatmap"] = None if sentence_map is None else sentence_map[:patches].reshape(num_views, grid, grid).numpy()
                start = patches
                for part, count in self.model.memory_layout.items():  # study token, observation tokens
                    if count:
                        share = None if sentence_map is None else float(sentence_map[start:start + count].sum())
                        target[_SHARE_KEYS[part]] = share
                    start += count
                target["token_positions"] = item["tokens"]
            pixels = model_outputs["pixel_values"][0].float().clamp(0, 1).cpu().numpy()
            output["view_images"] = [
                (pixels[view] * 255).round().astype(np.uint8) if present else None
                for view, present in enumerate(output["views"])
            ]
        return [output]


def _decode_with_offsets(tokenizer: Any, ids: list[int]) -> tuple[str, list[int]]:
    """The decoded text of `ids` (special tokens skipped), as `tokenizer.decode` writes it, and its length after each token.

    One streaming pass gives both; where the stream disagrees with `decode` (bytes that form no valid UTF-8, which
    `decode` shows as U+FFFD and the stream drops), the lengths come from decoding each prefix instead.
    """
    from tokenizers.decoders import DecodeStream

    text = tokenizer.decode(ids, skip_special_tokens=True)
    stream = DecodeStream(skip_special_tokens=True)
    backend = tokenizer.backend_tokenizer
    pieces, ends, length = [], [], 0
    for token in ids:
        pieces.append(stream.step(backend, token) or "")
        length += len(pieces[-1])
        ends.append(length)
    if "".join(pieces) != text:
        ends, length = [], 0
        for count in range(1, len(ids) + 1):
            length = max(length, min(len(tokenizer.decode(ids[:count], skip_special_tokens=True)), len(text)))
            ends.append(length)
    return text, ends


def _sentences(report: str, text: str, token_ends: list[int]) -> list[dict[str, Any]]:
    """Sentences of the cleaned `report` with the positions of the generated tokens that wrote each one.

    A token belongs to the sentence holding its first non-space character in the raw decoded `text`. A token that
    shows no such character (whitespace, or the first bytes of a character the next token completes) belongs to the
    sentence of the next token that does, or to the last sentence when none follows: every token is in one sentence.
    The raw sentences and the cleaned ones are the same sentences in the same order (cleaning only changes whitespace).
    """
    raw_spans = split_sentence_spans(text)
    clean_spans = split_sentence_spans(report)
    members: list[list[int]] = [[] for _ in raw_spans]
    pending: list[int] = []
    begin = 0
    for position, end in enumerate(token_ends):
        piece = text[begin:end]
        first = begin + len(piece) - len(piece.lstrip())
        begin = end
        pending.append(position)
        if first >= end:
            continue
        index = next((i for i, (start, stop) in enumerate(raw_spans) if start <= first < stop), None)
        if index is not None:
            members[index].extend(pending)
            pending = []
    if pending and members:
        members[-1].extend(pending)
    if len(clean_spans) != len(raw_spans):  # cleaning merged or split sentences: keep text, drop token positions
        members = [[] for _ in clean_spans]
    return [
        {"text": report[start:stop], "start": start, "end": stop, "tokens": tokens}
        for (start, stop), tokens in zip(clean_spans, members)
    ]


__all__ = [
    "PIPELINE_TASK",
    "SENTENCE_END",
    "STUDY_KEYS",
    "XrayReportPipeline",
    "attention_concentration",
    "cross_attention_maps",
    "generate_with_cross_attention",
    "split_sentence_spans",
]
