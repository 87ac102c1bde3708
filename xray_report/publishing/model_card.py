"""The Hub model card of a trained report model, generated from its config and its metrics file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from modeling.configuration_biovil_t import BioViLTConfig
from modeling.pipeline_xray_report import PIPELINE_TASK
from xray_report.inference.notice import RESEARCH_NOTICE

# metrics-file key → (name shown in the card, Hub metric type)
CARD_METRICS: dict[str, tuple[str, str]] = {
    "bleu_1": ("BLEU-1", "bleu"),
    "bleu_2": ("BLEU-2", "bleu"),
    "bleu_3": ("BLEU-3", "bleu"),
    "bleu_4": ("BLEU-4", "bleu"),
    "meteor": ("METEOR", "meteor"),
    "rouge_l": ("ROUGE-L", "rouge"),
    "cider": ("CIDEr", "cider"),
    "ce_micro_f1": ("CheXpert-label F1 (micro, rule-based labeler)", "f1"),
    "ce_macro_f1": ("CheXpert-label F1 (macro, rule-based labeler)", "f1"),
}
_KEY_PREFIXES = ("test_", "eval_", "predict_")
CARD_TEMPLATE = Path(__file__).with_name("model_card_template.md")
"""The card's text, a Jinja template rendered by `huggingface_hub.ModelCard.from_template`."""
REQUIREMENTS = ("torch", "transformers>=5", "tokenizers", "hi-ml-multimodal", "pillow", "numpy", "pydicom (DICOM input only)")


@dataclass(frozen=True)
class CardMetric:
    key: str
    name: str
    metric_type: str
    value: float


@dataclass(frozen=True)
class MetricsSummary:
    """What the card shows of a metrics file.

    Attributes:
        metrics: the model's card metrics, in `CARD_METRICS` order.
        split / dataset_name / num_studies: what was scored.
        baselines: trivial baseline name -> card-metric key -> value, scored the same way (may be empty).
        protocol: the line naming the NLG protocol ("" when the file does not say).
    """

    metrics: list[CardMetric]
    split: str
    dataset_name: str
    num_studies: int | None
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)
    protocol: str = ""


def _card_values(values: dict[str, Any]) -> dict[str, float]:
    """Card-metric key -> value of a flat metrics dict (prefixes dropped, non-numeric values left out)."""
    found = {}
    for raw_key, value in values.items():
        key = next((raw_key[len(p) :] for p in _KEY_PREFIXES if raw_key.startswith(p)), raw_key)
        if key in CARD_METRICS and isinstance(value, (int, float)) and not isinstance(value, bool):
            found[key] = float(value)
    return found


def read_metrics(path: str | Path) -> MetricsSummary:
    """Reads a metrics JSON: `xray_report.evaluation.rescore`'s output (`{"corpus": {...}}`), the `metrics_<split>.json` that
    training writes (`{"metrics": {...}}`) or a flat `{name: value}` dict.

    Keys may carry a `test_`/`eval_`/`predict_` prefix (as `Seq2SeqTrainer` writes them). Optional top-level keys:
    `split` (default "test"), `dataset` (default "IU X-ray"), `num_studies`, `baselines` (name -> {"corpus": ...})
    and `protocol` (its `nlg` line). Metrics that are `None` (e.g. METEOR without Java) are left out of the card
    rather than reported as 0.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error}).") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of metrics.")
    values = data.get("corpus", data.get("metrics", data))
    metrics = [
        CardMetric(key=key, name=CARD_METRICS[key][0], metric_type=CARD_METRICS[key][1], value=value)
        for key, value in _card_values(values).items()
    ]
    if not metrics:
        raise ValueError(f"{path}: none of the card metrics {sorted(CARD_METRICS)} has a numeric value.")
    order = list(CARD_METRICS)
    metrics.sort(key=lambda metric: order.index(metric.key))
    return MetricsSummary(
        metrics=metrics,
        split=str(data.get("split", "test")),
        dataset_name=str(data.get("dataset", "IU X-ray")),
        num_studies=data.get("num_studies", data.get("num_examples")),
        baselines={
            name: _card_values(row.get("corpus", {}))
            for name, row in (data.get("baselines") or {}).items() if isinstance(row, dict)
        },
        protocol=str((data.get("protocol") or {}).get("nlg", "")) if isinstance(data.get("protocol"), dict) else "",
    )


def build_model_card(
    repo_id: str,
    model_config: dict[str, Any],
    metrics: MetricsSummary | None,
    example_image_url: str,
    license: str = "mit",
    datasets: list[str] | None = None,
    base_models: list[str] | None = None,
) -> ModelCard:
    """Returns the card: YAML metadata (library, pipeline tag, base models, metrics, widget) and the body.

    Args:
        base_models: the Hub checkpoints training started from (`[]`: from scratch; None: not recorded); the
            card's `base_model` lists exactly these.
    """
    encoder = model_config.get("encoder", {})
    decoder = model_config.get("decoder", {})
    eval_results = None
    if metrics is not None:
        eval_results = [
            EvalResult(
                task_type=PIPELINE_TASK,
                task_name="Chest X-ray report generation",
                dataset_type="iu_xray",
                dataset_name=metrics.dataset_name,
                dataset_split=metrics.split,
                metric_type=metric.metric_type,
                metric_name=metric.name,
                metric_value=round(metric.value, 4),
            )
            for metric in metrics.metrics
        ]
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag=PIPELINE_TASK,
        license=license,
        language="en",
        tags=["radiology", "chest-x-ray", "report-generation", "biovil-t", "gpt2", "vision-encoder-decoder", "custom_code"],
        base_model=base_models or None,
        datasets=datasets,
        metrics=sorted({metric.metric_type for metric in metrics.metrics}) if metrics else None,
        model_name=repo_id.split("/")[-1],
        eval_results=eval_results,
        widget=[{"src": example_image_url, "example_title": "Synthetic frontal radiograph (not a patient)"}],
    )
    return ModelCard.from_template(
        card_data, template_path=CARD_TEMPLATE, provenance=_provenance(base_models),
        **_template_values(repo_id, encoder, decoder, metrics, model_config),
    )


def _provenance(base_models: list[str] | None) -> str:
    if base_models is None:
        return "\n## Starting point\nNot recorded: this folder was not written by `train_hf.py`.\n"
    if not base_models:
        return "\n## Starting point\nTrained from scratch: no pretrained checkpoint (random encoder and decoder).\n"
    return "\n## Starting point\nFine-tuned from " + ", ".join(f"`{name}`" for name in base_models) + ".\n"


def _template_values(repo_id: str, encoder: dict[str, Any], decoder: dict[str, Any],
                     metrics: MetricsSummary | None, model_config: dict[str, Any]) -> dict[str, Any]:
    """The variables of `model_card_template.md`."""
    encoder_config = BioViLTConfig.from_dict(encoder)
    image_size, grid = encoder_config.image_size, encoder_config.grid_size
    views = encoder.get("num_views", 2)
    study_token = bool(model_config.get("study_token"))
    observations = model_config.get("observation_names") or []
    observation_tokens = bool(model_config.get("observation_tokens"))
    return {
        "repo_id": repo_id,
        "model_name": repo_id.split("/")[-1],
        "encoder_type": encoder.get("image_encoder_type", "resnet50_multi_image"),
        "prior_clause": ", optional prior frontal image" if encoder.get("use_previous_image") else "",
        "layers": decoder.get("n_layer", 12),
        "width": decoder.get("n_embd", 768),
        "views": views,
        "image_size": image_size,
        "grid": grid,
        "tokens": views * grid * grid,
        "memory_tokens": views * grid * grid + int(study_token) + (len(observations) if observation_tokens else 0),
        "extra_rows": _extra_shape_rows(study_token, observations, observation_tokens, decoder.get("n_embd", 768)),
        "requirements": ", ".join(REQUIREMENTS),
        "metrics_table": _metrics_table(metrics),
        "protocol_line": _protocol_line(metrics),
        "notice": RESEARCH_NOTICE,
    }


def _extra_shape_rows(study_token: bool, observations: list[str], observation_tokens: bool, width: int) -> str:
    """Shape-table rows of the optional parts: the study token, the observation head and its tokens."""
    rows = []
    if study_token:
        rows.append(f"| study token (cross-attention token after the patches) | (batch, 1, {width}): the max over the "
                    "present views' projected patch tokens |")
    if observations and observation_tokens:
        rows.append(f"| observation tokens (last cross-attention tokens) | (batch, {len(observations)}, {width}): per "
                    "observation a learnt \"stated\" or \"not stated\" embedding, chosen by `observation_logits` > 0 "
                    "(by the report's labels in training) |")
    if observations:
        use = "chooses the observation tokens" if observation_tokens else "training aid, not used by `generate`"
        rows.append(f"| `observation_logits` ({use}) | (batch, {len(observations)}): "
                    f"{', '.join(observations)} stated by the report, from the same max |")
    return "".join("\n" + row for row in rows)


_BASELINE_TITLES = {
    "most_frequent_train_report": "most frequent train report",
    "best_train_report_on_validation": "best single train report",
}


def _protocol_line(metrics: MetricsSummary | None) -> str:
    if metrics is None or not metrics.protocol:
        return "NLG metrics: pycocoevalcap BLEU/METEOR/ROUGE-L/CIDEr on normalised reports (protocol not recorded)."
    return f"NLG protocol of these numbers: {metrics.protocol}."


def _metrics_table(metrics: MetricsSummary | None) -> str:
    if metrics is None:
        return "No metrics file was given when this card was written: this model has not been evaluated here."
    studies = f", {metrics.num_studies} studies" if metrics.num_studies else ""
    names = list(metrics.baselines)
    header = "| metric | this model |" + "".join(f" {_BASELINE_TITLES.get(n, n)} |" for n in names)
    rule = "| --- | --- |" + " --- |" * len(names)
    rows = []
    for metric in metrics.metrics:
        cells = "".join(
            f" {metrics.baselines[n][metric.key]:.4f} |" if metric.key in metrics.baselines[n] else " – |" for n in names
        )
        rows.append(f"| {metric.name} | {metric.value:.4f} |{cells}")
    table = "\n".join([header, rule, *rows])
    return f"Measured on the {metrics.dataset_name} {metrics.split} split{studies}.\n\n{table}"


__all__ = ["CARD_METRICS", "REQUIREMENTS", "CardMetric", "MetricsSummary", "build_model_card", "read_metrics"]
