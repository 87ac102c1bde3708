"""The Hub model card of a trained report model, generated from its config, its training record and metrics file.

Nothing in the card is assumed: the training data, starting weights, steps and precision come from the folder's
`training_record.json` (`xray_report.training.record`), the shapes from its config, the results from its
metrics file. A folder without a record gets a card that says so and makes no claim about either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from modeling.configuration_biovil_t import BioViLTConfig
from modeling.convert_biovilt_checkpoint import BIOVIL_T_REPO_ID
from modeling.pipeline_xray_report import PIPELINE_TASK
from processing.json_files import read_json_file
from xray_report.inference.notice import RESEARCH_NOTICE
from xray_report.training.record import (
    SEMIREAL_NAME,
    TRAINING_RECORD_FILE,
    TrainingRecord,
    base_models,
    is_local_source,
    provenance_lines,
    trunk_title,
)

from .licensing import DEFAULT_LICENSE, license_statement

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
_SINGLE_INSTITUTION_BUILDERS = ("iu_xray", "mimic_cxr")
_IU_XRAY_CITATION = """
@article{demner2016iuxray,
  title   = {Preparing a collection of radiology examinations for distribution and retrieval},
  author  = {Demner-Fushman, Dina and Kohli, Marc D. and Rosenman, Marc B. and Shooshan, Sonya E. and Rodriguez, Laritza
             and Antani, Sameer and Thoma, George R. and McDonald, Clement J.},
  journal = {Journal of the American Medical Informatics Association},
  volume  = {23}, number = {2}, pages = {304--310}, year = {2016}
}"""


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
        split / num_studies: what was scored. dataset_name: the data set the file names (None: it names none).
        baselines: trivial baseline name -> card-metric key -> value, scored the same way (may be empty).
        protocol: the line naming the NLG protocol ("" when the file does not say).
        source: the metrics file's name.
    """

    metrics: list[CardMetric]
    split: str
    dataset_name: str | None
    num_studies: int | None
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)
    protocol: str = ""
    source: str = ""


@dataclass(frozen=True)
class ExampleImage:
    """The example input published with the model: its URL on the Hub and what it is."""

    url: str
    caption: str


def _card_values(values: dict[str, Any]) -> dict[str, float]:
    """Card-metric key -> value of a flat metrics dict (prefixes dropped, non-numeric values left out)."""
    found = {}
    for raw_key, value in values.items():
        key = next((raw_key[len(p) :] for p in _KEY_PREFIXES if raw_key.startswith(p)), raw_key)
        if key in CARD_METRICS and isinstance(value, (int, float)) and not isinstance(value, bool):
            found[key] = float(value)
    return found


def read_metrics(path: str | Path) -> MetricsSummary:
    """Reads a metrics JSON: the output of `python -m xray_report.evaluation` (`{"corpus": {...}}`), the
    `metrics_<split>.json` that training writes (`{"metrics": {...}}`) or a flat `{name: value}` dict.

    Keys may carry a `test_`/`eval_`/`predict_` prefix (as `Seq2SeqTrainer` writes them). Optional top-level keys:
    `split` (default "test"), `dataset` (the data set scored; no default), `num_studies`, `baselines`
    (name -> {"corpus": ...}) and `protocol` (its `nlg` line). Metrics that are `None` (e.g. METEOR without Java)
    are left out of the card rather than reported as 0.
    """
    path = Path(path)
    data = read_json_file(path, "metrics file")
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
        dataset_name=str(data["dataset"]) if data.get("dataset") else None,
        num_studies=data.get("num_studies", data.get("num_examples")),
        baselines={
            name: _card_values(row.get("corpus", {}))
            for name, row in (data.get("baselines") or {}).items() if isinstance(row, dict)
        },
        protocol=str((data.get("protocol") or {}).get("nlg", "")) if isinstance(data.get("protocol"), dict) else "",
        source=path.name,
    )


def model_index_dataset(record: TrainingRecord | None, metrics: MetricsSummary | None) -> str | None:
    """The data set name of the card's `model-index` results, or None when the card must have none.

    Results are indexed only for a real data set the run recorded, scored on that data set (a metrics file that
    names another is shown in the body only): never for synthetic studies or a folder without a record.
    """
    if record is None or metrics is None or record.dataset.synthetic:
        return None
    if metrics.dataset_name not in (None, record.dataset.name):
        return None
    return record.dataset.name


def build_model_card(
    repo_id: str,
    model_config: dict[str, Any],
    metrics: MetricsSummary | None = None,
    example: ExampleImage | None = None,
    license: str = DEFAULT_LICENSE,
    datasets: list[str] | None = None,
    record: TrainingRecord | None = None,
    license_given: bool = True,
) -> ModelCard:
    """Returns the card: YAML metadata (library, pipeline tag, base models, results, `inference: false`, a widget
    example only when there is an example image) and the body.

    Args:
        model_config: the saved `config.json` as a dict (shapes, encoder type, decoder size).
        metrics: the test metrics (None: the card says the model was not evaluated here).
        example: the published example image (None: no widget example).
        record: the folder's training record (None: the card says provenance is not recorded); `base_model` lists
            exactly the Hub checkpoints it names.
        license_given: the publisher chose `license` (else it is the default, and the card says so).
    """
    index_name = model_index_dataset(record, metrics)
    eval_results = None
    if index_name is not None:
        eval_results = [
            EvalResult(
                task_type=PIPELINE_TASK,
                task_name="Chest X-ray report generation",
                dataset_type=record.dataset.builder,
                dataset_name=index_name,
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
        tags=_tags(record),
        base_model=base_models(record) or None,
        datasets=datasets,
        metrics=sorted({metric.metric_type for metric in metrics.metrics}) if metrics else None,
        model_name=repo_id.split("/")[-1],
        eval_results=eval_results,
        widget=[{"src": example.url, "example_title": example.caption}] if example else None,
        inference=False,  # the Hub's hosted inference does not run this repository's custom code
    )
    return ModelCard.from_template(
        card_data, template_path=CARD_TEMPLATE,
        **_template_values(repo_id, model_config, metrics, record, example,
                           license_statement(record, license, license_given)),
    )


def _tags(record: TrainingRecord | None) -> list[str]:
    tags = ["radiology", "chest-x-ray", "report-generation", "gpt2", "vision-encoder-decoder", "custom_code"]
    if record is not None and record.encoder.pretrained_from == BIOVIL_T_REPO_ID:
        tags.insert(3, "biovil-t")
    if record is not None and record.dataset.synthetic:
        tags.append("synthetic-data")
    return tags


def _template_values(repo_id: str, model_config: dict[str, Any], metrics: MetricsSummary | None,
                     record: TrainingRecord | None, example: ExampleImage | None, license_text: str) -> dict[str, Any]:
    """The variables of `model_card_template.md`."""
    encoder, decoder = model_config.get("encoder", {}), model_config.get("decoder", {})
    encoder_config = BioViLTConfig.from_dict(encoder)
    image_size, grid = encoder_config.image_size, encoder_config.grid_size
    views = encoder.get("num_views", 2)
    width = decoder.get("n_embd", 768)
    study_token = bool(model_config.get("study_token"))
    observations = model_config.get("observation_names") or []
    observation_tokens = bool(model_config.get("observation_tokens"))
    return {
        "repo_id": repo_id,
        "model_name": repo_id.split("/")[-1],
        "provenance": "\n".join(f"- {line}." for line in provenance_lines(record)),
        "encoder_sentence": _encoder_sentence(encoder_config, record),
        "decoder_sentence": _decoder_sentence(decoder, record),
        "prior_clause": ", optional prior frontal image" if encoder_config.use_previous_image else "",
        "channel_note": _channel_note(encoder_config),
        "width": width,
        "views": views,
        "image_size": image_size,
        "grid": grid,
        "tokens": views * grid * grid,
        "memory_tokens": views * grid * grid + int(study_token) + (len(observations) if observation_tokens else 0),
        "extra_rows": _extra_shape_rows(study_token, observations, observation_tokens, width),
        "requirements": ", ".join(REQUIREMENTS),
        "example_line": f"\n`example.png` in this repository is an example input: {example.caption}.\n" if example else "",
        "training_data": _training_data(record),
        "metrics_table": _metrics_table(metrics, record),
        "evaluation_notes": _evaluation_notes(metrics),
        "license_text": license_text,
        "data_limitation": _data_limitation(record),
        "data_citation": _IU_XRAY_CITATION if record is not None and record.dataset.builder == "iu_xray"
        and not record.dataset.synthetic else "",
        "notice": RESEARCH_NOTICE,
    }


def _weights_phrase(source: str | None) -> str:
    if source is None:
        return "trained from scratch (no pretrained weights)"
    if is_local_source(source):
        return "initialised from a local folder of unrecorded origin"
    return f"initialised from `{source}`"


def _encoder_sentence(config: BioViLTConfig, record: TrainingRecord | None) -> str:
    """What the image encoder is: BioViL-T itself only when its ResNet-50 trunk starts from BioViL-T's weights."""
    kind = config.image_encoder_type
    trunk = kind.split("_")[0]
    source = record.encoder.pretrained_from if record is not None else None
    if trunk == "resnet50" and source == BIOVIL_T_REPO_ID:
        return f"Microsoft's BioViL-T image encoder (hi-ml-multimodal `{kind}`, a ResNet-50 trunk), initialised from `{source}`"
    built = f"a {trunk_title(trunk)} trunk in hi-ml-multimodal's BioViL-T multi-image encoder (`{kind}`"
    built += ")" if trunk == "resnet50" else "; not BioViL-T's ResNet-50 nor its weights)"
    if record is None:
        return f"{built}; its starting weights are not recorded"
    return f"{built}, {_weights_phrase(source)}"


def _decoder_sentence(decoder: dict[str, Any], record: TrainingRecord | None) -> str:
    size = f"{decoder.get('n_layer', 12)} layers, width {decoder.get('n_embd', 768)}"
    if record is None:
        return f"GPT-2 ({size}); its starting weights are not recorded"
    size += f", {record.decoder.parameters / 1e6:.1f} M parameters"
    if record.decoder.pretrained_from is None:
        return f"GPT-2 ({size}) built from a fresh config and trained from scratch"
    return f"GPT-2 ({size}) {_weights_phrase(record.decoder.pretrained_from)}"


def _channel_note(config: BioViLTConfig) -> str:
    """The patch-embedding row's note: BioViL-T's static / temporal channels only for its ResNet-50 trunk."""
    notes = []
    if config.image_encoder_type.startswith("resnet50"):
        notes.append("BioViL-T's 256 static + 256 temporal channels")
        if not config.use_previous_image:
            notes.append("with no prior image the temporal half is hi-ml's learnt missing-prior embedding")
    if config.local_patch_size:
        notes.append(f"each token encodes one {config.local_patch_size} px tile on its own")
    return ": " + "; ".join(notes) if notes else ""


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


def _training_data(record: TrainingRecord | None) -> str:
    """The Training data section, from the record only."""
    if record is None:
        return (f"Not recorded: this folder has no `{TRAINING_RECORD_FILE}` (it was not written by `train_hf.py`), so "
                "this card makes no claim about the data the model was trained on or the weights it started from.")
    data = record.dataset
    lines = [f"**{data.name[:1].upper()}{data.name[1:]}**: {data.description}."]
    if data.synthetic:
        lines[0] += " No real data set was used."
    table = ["| split | studies |", "| --- | --- |", *(f"| {split} | {count} |" for split, count in data.studies.items())]
    built = f"Built with the project's `{data.builder}` builder"
    if data.layout:
        built += f" from the `{data.layout}` layout"
    if data.split_file:
        built += f", split by `{Path(data.split_file).name}`"
    processes = "process" if record.num_processes == 1 else "processes"
    lines += ["", "\n".join(table), "",
              f"{built}. Trained for {record.steps} steps in {record.precision} on {record.num_processes} {processes} "
              f"(seed {record.seed}); recorded by {record.written_by} at {record.time}."]
    if data.terms:
        lines += ["", f"**Terms of use of the data:** {data.terms}"]
    return "\n".join(lines)


_BASELINE_TITLES = {
    "most_frequent_train_report": "most frequent train report",
    "best_train_report_on_validation": "best single train report",
}


def _evaluation_notes(metrics: MetricsSummary | None) -> str:
    """The protocol line, and what the baseline columns and the CheXpert-label F1 are when the table has them."""
    if metrics is None:
        return ""
    notes = [f"NLG protocol of these numbers: {metrics.protocol}." if metrics.protocol else
             "NLG metrics: pycocoevalcap BLEU/METEOR/ROUGE-L/CIDEr on normalised reports (protocol not recorded)."]
    if metrics.baselines:
        notes.append("The baseline columns are reports that do not look at the image (the most frequent training "
                     "report; the single training report that scores best on the validation split), scored the same "
                     "way: a model is only reading images where it beats them.")
    else:
        notes.append("No image-blind baseline was scored with these numbers (the metrics file has none), so they do "
                     "not show by themselves whether the model reads the images.")
    if any(metric.key.startswith("ce_") for metric in metrics.metrics):
        notes.append("CheXpert-label F1 uses this project's rule-based labeler (14 observations, with negation and "
                     "uncertainty handling) on generated versus reference reports; it is not the CheXbert labeler, so "
                     "it does not compare one-to-one with papers that use CheXbert.")
    return "\n" + "\n".join(notes)


def _scored_on(metrics: MetricsSummary, record: TrainingRecord | None) -> str:
    studies = f", {metrics.num_studies} studies" if metrics.num_studies else ""
    if record is not None and metrics.dataset_name in (None, record.dataset.name):
        if record.dataset.synthetic:
            return (f"Measured on the {metrics.split} split of the synthetic studies{studies}, not on patient data: "
                    "these numbers say nothing about real radiographs.")
        return f"Measured on the {record.dataset.name} {metrics.split} split{studies}."
    if metrics.dataset_name:
        return f"Measured on the {metrics.split} split of {metrics.dataset_name}{studies}, as the metrics file states."
    return f"Measured on a {metrics.split} split{studies} of data this folder does not record."


def _metrics_table(metrics: MetricsSummary | None, record: TrainingRecord | None) -> str:
    if metrics is None:
        return ("No metrics: the model folder holds no `metrics_test.json` and no metrics file was given, so this "
                "model has not been evaluated here.")
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
    source = f" Scores from `{metrics.source}`." if metrics.source else ""
    return f"{_scored_on(metrics, record)}{source}\n\n{table}"


def _data_limitation(record: TrainingRecord | None) -> str:
    """The first limitation: what the training data says about where the model can be trusted at all."""
    if record is None:
        return "The training data are not recorded: how the model behaves on any population is unknown."
    data = record.dataset
    if data.synthetic:
        return ("Trained only on synthetic drawings made by this project: it has never seen a real radiograph, and "
                "what it writes for a real image means nothing.")
    if data.name == SEMIREAL_NAME:
        return ("Trained on phantom images rendered from report findings, not on radiographs: what it writes for a "
                "real image means nothing.")
    if data.builder in _SINGLE_INSTITUTION_BUILDERS:
        return (f"Trained on {data.name}, a single-institution collection: expect poor transfer to other hospitals, "
                "devices and populations.")
    return f"Trained on {data.name}: expect poor transfer to data unlike it."


__all__ = [
    "CARD_METRICS",
    "REQUIREMENTS",
    "CardMetric",
    "ExampleImage",
    "MetricsSummary",
    "build_model_card",
    "model_index_dataset",
    "read_metrics",
]
