"""The Hub model card of a trained report model, generated from its config and its metrics file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

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
    """Reads a metrics JSON: `evaluation.rescore`'s output (`{"corpus": {...}}`), the `metrics_<split>.json` that
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
                task_type="image-to-text",
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
        pipeline_tag="image-to-text",
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
    body = _card_body(repo_id, encoder, decoder, metrics) + _provenance(base_models)
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n{body}")


def _provenance(base_models: list[str] | None) -> str:
    if base_models is None:
        return "\n## Starting point\nNot recorded: this folder was not written by `train_hf.py`.\n"
    if not base_models:
        return "\n## Starting point\nTrained from scratch: no pretrained checkpoint (random encoder and decoder).\n"
    return "\n## Starting point\nFine-tuned from " + ", ".join(f"`{name}`" for name in base_models) + ".\n"


def _card_body(repo_id: str, encoder: dict[str, Any], decoder: dict[str, Any], metrics: MetricsSummary | None) -> str:
    image_size = encoder.get("image_size", 448)
    grid = image_size // 32
    views = encoder.get("num_views", 2)
    width = decoder.get("n_embd", 768)
    layers = decoder.get("n_layer", 12)
    return f"""
# {repo_id.split("/")[-1]}: chest X-ray report generation (BioViL-T → GPT-2)

> **Research use only. Not a medical device.** The reports this model writes can be wrong, incomplete or invented.
> They must not be used for diagnosis, triage or any decision about a patient.

## What it is
A `VisionEncoderDecoderModel`: Microsoft's BioViL-T image encoder (`{encoder.get("image_encoder_type", "resnet50_multi_image")}`,
from hi-ml-multimodal) reads a chest X-ray study (frontal view, optional lateral view{", optional prior frontal image" if encoder.get("use_previous_image") else ""})
and a GPT-2 decoder ({layers} layers, width {width}) with cross-attention writes the report (Findings, then Impression).

## Architecture and shapes
| tensor | shape |
| --- | --- |
| `pixel_values` | (batch, {views}, 3, {image_size}, {image_size}), values in [0, 1], frontal first |
| `view_mask` | (batch, {views}), False where a view is absent |
| BioViL-T patch embeddings | (batch, views, 512, {grid}, {grid}): 256 static + 256 temporal channels |
| encoder output (`last_hidden_state`) | (batch, {views * grid * grid}, 512), with view and position embeddings; an absent view is a learned missing-view embedding |
| decoder cross-attention input | (batch, {views * grid * grid}, {width}) after a linear projection |

## How to use
Requires: {", ".join(REQUIREMENTS)}. The model's code is in this repository (`trust_remote_code=True`).

```python
from transformers import pipeline

generator = pipeline("image-to-text", model="{repo_id}", trust_remote_code=True)
report = generator({{"frontal": "frontal.png", "lateral": "lateral.png"}})  # PNG, JPEG or DICOM; lateral optional
print(report[0]["generated_text"])       # also: "finished", "sentences" (text and character spans), "notes"
generator(["a.png", "b.png"], batch_size=8)                       # many studies, 8 per generate call
generator("frontal.png", return_heatmaps=True)                    # + each sentence's cross-attention map per view
```

The same model loads with `AutoModelForImageTextToText.from_pretrained("{repo_id}", trust_remote_code=True)` and
its processor with `AutoProcessor`; the pipeline above is the path that reads, preprocesses, generates and decodes.

## Intended use
Research on automatic radiology report generation: benchmarking, error analysis, method development.

## Out-of-scope use
Any clinical use: diagnosis, triage, screening, worklist prioritisation, or reports shown to patients or clinicians
as if written by a radiologist. It has not been validated clinically and is not a medical device in any jurisdiction.
Do not use it on data from populations, devices or views unlike the training data without your own evaluation.

## Training data
IU X-ray (Open-i, Indiana University chest X-ray collection; Demner-Fushman et al., 2016): frontal and lateral views
with radiology reports; the report target is Findings followed by Impression. The data has its own terms of use
(Open-i / U.S. National Library of Medicine); check them before reuse. Reports are de-identified; "XXXX" is the
collection's de-identification mask.

## Evaluation
{_metrics_table(metrics)}

{_protocol_line(metrics)}
The baseline columns are reports that do not look at the image (the most frequent training report; the single
training report that scores best on the validation split), scored the same way: a model is only reading images
where it beats them. CheXpert-label F1 uses this project's rule-based labeler (14 observations, with negation and uncertainty handling) on
generated versus reference reports; it is not the CheXbert labeler, so it does not compare one-to-one with papers
that use CheXbert.

## Limitations and known failure modes
- Trained on a small single-institution collection: expect poor transfer to other hospitals, devices and populations.
- Report generators favour frequent normal phrasing and can miss or invent findings; rare findings are under-reported.
- With no prior image, sentences claiming a comparison with a prior study ("unchanged", "again seen") are not grounded
  in any input; the project's truth guard flags them.
- Laterality, sizes and device positions are unreliable.
- The pipeline makes no attempt to detect non-chest or non-X-ray inputs.

## Citation
```bibtex
@inproceedings{{bannur2023biovilt,
  title     = {{Learning to Exploit Temporal Structure for Biomedical Vision-Language Processing}},
  author    = {{Bannur, Shruthi and Hyland, Stephanie and Liu, Qianchu and P{{\\'e}}rez-Garc{{\\'i}}a, Fernando and Ilse, Maximilian
               and Castro, Daniel C. and Boecking, Benedikt and Sharma, Harshita and Bouzid, Kenza and Thieme, Anja
               and Schwaighofer, Anton and Wetscherek, Maria and Lungren, Matthew P. and Nori, Aditya
               and Alvarez-Valle, Javier and Oktay, Ozan}},
  booktitle = {{Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)}},
  year      = {{2023}}
}}
@article{{demner2016iuxray,
  title   = {{Preparing a collection of radiology examinations for distribution and retrieval}},
  author  = {{Demner-Fushman, Dina and Kohli, Marc D. and Rosenman, Marc B. and Shooshan, Sonya E. and Rodriguez, Laritza
             and Antani, Sameer and Thoma, George R. and McDonald, Clement J.}},
  journal = {{Journal of the American Medical Informatics Association}},
  volume  = {{23}}, number = {{2}}, pages = {{304--310}}, year = {{2016}}
}}
```
"""


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
