"""Argument dataclasses of `train_hf.py` and the config-file + command-line parser.

A run is described by three dataclasses, parsed by `transformers.HfArgumentParser`:
[`ModelArguments`], [`DataArguments`] and [`ReportTrainingArguments`] (a `Seq2SeqTrainingArguments` with the
project's extra options). `parse_config` reads a YAML or JSON file (keys of any of the three, flat) and applies
command-line overrides (`--learning_rate 1e-4`) on top: the file's values become command-line tokens that come
first, so a later token wins and every value goes through the same type conversion.

Relative paths in a config file (`data_dir`, `tokenizer_name_or_path`, ...) are resolved against the file's own
folder, never against the working directory; relative paths given on the command line are taken as they are.
"""

from __future__ import annotations

import json
import os
import re
import typing
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, field, fields, make_dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from huggingface_hub.errors import StrictDataclassError
from transformers import GPT2Config, HfArgumentParser, Seq2SeqTrainingArguments

from dataset_builder import BUILDERS, PATH_OPTIONS, builder_options
from modeling import BioViLTConfig, XrayReportConfig
from processing import LEARNT_TOKENIZER_KINDS
from xray_report.evaluation import OBSERVATIONS
from xray_report.evaluation.nlg import R2GEN_DATASETS
from xray_report.evaluation.options import PROTOCOLS

from .augmentation import ImageAugmentation

BYTE_LEVEL_TOKENIZER = "byte-level"
"""`tokenizer_name_or_path` value selecting `processing.build_byte_level_tokenizer` (no download, no files)."""

PATH_FIELDS: tuple[str, ...] = (
    "model_name_or_path",
    "encoder_name_or_path",
    "decoder_name_or_path",
    "tokenizer_name_or_path",
    *PATH_OPTIONS,
    "cache_dir",
    "output_dir",
    "resume_from_checkpoint",
)
"""Fields whose relative values in a config file are resolved against the file's folder (the builders' path
options, `data_dir` first, included)."""


class ConfigError(ValueError):
    """A config file or override that cannot describe a run; the message names the file and the field."""


_Config = TypeVar("_Config")

_SET_BY_OPTIONS = {
    "observation_names": "observation_loss_weight > 0 gives a fresh model its observation_names (the observation head)",
}
"""Model-config fields that no option names directly, and the option that sets them: added to a config's message."""


def _model_config(build: Callable[[], _Config]) -> _Config:
    """`build()`, a model config whose own validation (`BioViLTConfig`, `XrayReportConfig`) checks the options;
    its error becomes a `ConfigError` with the config's message."""
    try:
        return build()
    except (ValueError, StrictDataclassError) as error:
        message = str(error.__cause__ or error)
        hints = [hint for name, hint in _SET_BY_OPTIONS.items() if name in message]
        raise ConfigError("; ".join([message, *hints])) from error


@dataclass
class ModelArguments:
    """Which model to train: a saved report model, or an encoder and a decoder to assemble (see docs/training.md)."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "A saved XrayReportModel directory to continue from (its processor is loaded with it). "
                  "When set, the encoder_*/decoder_* options below are not used."},
    )
    encoder_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Converted BioViL-T encoder directory (python -m modeling.convert_biovilt_checkpoint). "
                  "None builds a randomly initialised encoder from encoder_type/image_size."},
    )
    encoder_type: str = field(
        default="resnet50_multi_image",
        metadata={"help": "resnet50_multi_image (BioViL-T) or resnet18_multi_image (small, for tests and CPU runs)."},
    )
    image_size: int = field(default=448, metadata={"help": "Input side in pixels (multiple of 32, or of local_patch_size; 448 with priors)."})
    use_previous_image: bool = field(
        default=False, metadata={"help": "Keep BioViL-T's temporal pooler and feed each study's prior frontal image."}
    )
    local_patch_size: int | None = field(
        default=None,
        metadata={"help": "Cut each view into tiles of this many pixels and encode each on its own: one patch token "
                  "per tile that sees only its tile, so the decoder must attend to a finding's tiles to report it "
                  "(small encoders trained from scratch; not with use_previous_image). None: whole images."},
    )
    decoder_name_or_path: str | None = field(
        default=None,
        metadata={"help": "GPT-2-family decoder (hub id such as gpt2, or a directory). None builds a fresh GPT-2 "
                  "from decoder_layers/decoder_width/decoder_heads."},
    )
    decoder_layers: int = field(default=2, metadata={"help": "Layers of a fresh decoder."})
    decoder_width: int = field(default=64, metadata={"help": "Hidden size of a fresh decoder."})
    decoder_heads: int = field(default=2, metadata={"help": "Attention heads of a fresh decoder."})
    decoder_positions: int = field(default=256, metadata={"help": "Maximum positions of a fresh decoder."})
    decoder_dropout: float | None = field(
        default=None, metadata={"help": "Overrides the decoder's embedding, attention and residual dropout."}
    )
    decoder_initializer_range: float | None = field(
        default=None,
        metadata={"help": "Standard deviation of a fresh decoder's initial weights (GPT-2's initializer_range; like "
                  "decoder_layers/width/heads, unused with a pretrained decoder). "
                  "None keeps GPT-2's 0.02, chosen for 768-wide models; with it the 128-wide tiny decoder was slow "
                  "to read the image, and configs/tiny_cpu.yaml uses 0.0625 (docs/limitations.md)."},
    )
    tokenizer_name_or_path: str | None = field(
        default=None,
        metadata={"help": f"Report tokenizer: a directory or hub id, or '{BYTE_LEVEL_TOKENIZER}'. Defaults to "
                  "decoder_name_or_path's; with neither, a tokenizer is learnt from the training reports."},
    )
    tokenizer_type: str = field(
        default="word",
        metadata={"help": "Kind of learnt tokenizer: word (one token per word or punctuation mark, rare words "
                  "become <|unk|>) or bpe (byte-level BPE)."},
    )
    tokenizer_vocab_size: int = field(default=5000, metadata={"help": "Largest vocabulary of a learnt tokenizer."})
    tokenizer_min_frequency: int = field(
        default=3, metadata={"help": "A word (word) or merge (bpe) seen fewer times in the training reports is not learnt."}
    )
    observation_loss_weight: float = field(
        default=0.0,
        metadata={"help": "Weight of the observation loss (0 = none). When > 0, a fresh model gets an observation "
                  "head: from the max over the study's encoder tokens it predicts each CheXpert observation the "
                  "labeler finds positive in the training report, next to the report loss (a model loaded by "
                  "model_name_or_path keeps its own head; this overrides its weight)."},
    )
    study_token: bool = field(
        default=False,
        metadata={"help": "A fresh model's decoder also cross-attends to the study token, the max over the study's "
                  "patch tokens (what the observation head reads)."},
    )
    observation_tokens: bool = field(
        default=False,
        metadata={"help": "A fresh model's decoder also cross-attends to one token per observation, 'stated' or "
                  "'not stated': from the training report's labels in training, from the observation head's "
                  "prediction in generation (needs observation_loss_weight > 0)."},
    )
    context_max_tokens: int = field(
        default=0,
        metadata={"help": "A fresh model reads each study's indication (its clinical context, the dataset's "
                  "'indication' column, XXXX masks removed) as a decoder prompt of at most this many tokens before "
                  "the report; 0: no context (see context_dropout)."},
    )
    max_new_tokens: int = field(default=128, metadata={"help": "Generation length limit stored in the model."})
    num_beams: int = field(default=1, metadata={"help": "Beams stored in the model's generation config."})
    lora_r: int = field(default=0, metadata={"help": "Rank of LoRA adapters on the decoder (0 = no LoRA; needs peft)."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling numerator."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA branch."})
    lora_target_modules: str = field(
        default=r".*\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)$",
        metadata={"help": "Regex (peft target_modules) of the decoder modules given adapters; cross-attention "
                  "and the encoder-to-decoder projection are new and always trained in full."},
    )

    def __post_init__(self) -> None:
        if self.decoder_initializer_range is not None and not self.decoder_initializer_range > 0:
            raise ConfigError(f"decoder_initializer_range must be > 0, got {self.decoder_initializer_range}")
        if self.lora_r < 0:
            raise ConfigError(f"lora_r must be >= 0, got {self.lora_r}")
        if self.tokenizer_type not in LEARNT_TOKENIZER_KINDS:
            raise ConfigError(f"tokenizer_type must be one of {LEARNT_TOKENIZER_KINDS}, got {self.tokenizer_type!r}")
        if self.tokenizer_vocab_size < 8 or self.tokenizer_min_frequency < 1:
            raise ConfigError("tokenizer_vocab_size must be >= 8 and tokenizer_min_frequency >= 1, got "
                              f"{self.tokenizer_vocab_size} and {self.tokenizer_min_frequency}")
        # the model's own rules (image size, tiles and prior image, observation head and tokens): checked here, by
        # the configs' validation, so that a bad combination fails before any data is built
        self.report_config()

    @property
    def observation_names(self) -> list[str] | None:
        """The observations a fresh model's head predicts: the CheXpert observations when
        `observation_loss_weight > 0`, else None (no head)."""
        return list(OBSERVATIONS) if self.observation_loss_weight > 0 else None

    def encoder_config(self) -> BioViLTConfig:
        """A fresh encoder's config from `encoder_type`, `image_size`, `use_previous_image`, `local_patch_size`.

        Raises:
            ConfigError: the message of `BioViLTConfig`'s validation.
        """
        return _model_config(lambda: BioViLTConfig(
            image_encoder_type=self.encoder_type, image_size=self.image_size,
            use_previous_image=self.use_previous_image, local_patch_size=self.local_patch_size,
        ))

    def decoder_config(self) -> GPT2Config:
        """A fresh GPT-2 decoder's config from `decoder_layers`, `decoder_width`, `decoder_heads`,
        `decoder_positions` and `decoder_initializer_range` (None keeps GPT-2's)."""
        initializer = {} if self.decoder_initializer_range is None else {
            "initializer_range": self.decoder_initializer_range}
        return GPT2Config(n_layer=self.decoder_layers, n_embd=self.decoder_width, n_head=self.decoder_heads,
                          n_positions=self.decoder_positions, **initializer)

    def report_config(self) -> XrayReportConfig:
        """The report model's config these options describe for a fresh model (a pretrained decoder's own config
        is not read here: GPT-2's defaults stand in for it).

        Raises:
            ConfigError: the message of `BioViLTConfig`'s or `XrayReportConfig`'s validation.
        """
        encoder = self.encoder_config()
        decoder = None if self.decoder_name_or_path else self.decoder_config()
        return _model_config(lambda: XrayReportConfig(
            encoder=encoder, decoder=decoder, observation_names=self.observation_names,
            observation_loss_weight=self.observation_loss_weight, study_token=self.study_token,
            observation_tokens=self.observation_tokens, context_max_tokens=self.context_max_tokens,
        ))


DATASET_OPTION_FIELDS: dict[str, str] = {"seed": "split_seed"}
"""Builder options whose `DataArguments` field has another name (`seed` is the training seed's)."""
_BUILDER_OPTION_OF_FIELD = {field_name: option for option, field_name in DATASET_OPTION_FIELDS.items()}


def _builder_option(field_name: str) -> str:
    """The builder option a `DatasetOptions` field carries."""
    return _BUILDER_OPTION_OF_FIELD.get(field_name, field_name)


def _dataset_option_fields() -> list[tuple[str, Any, Any]]:
    """`DataArguments`' builder options: every option of every builder (`dataset_builder.builder_options`), with
    the type, default and help its config class gives it; an option of some builders only says which.

    A `tuple` option (`split_ratios`) becomes a list, which the command line and a YAML list can give.
    """
    owners: dict[str, list[tuple[str, Any]]] = {}
    for name in BUILDERS:
        for option in builder_options(name).values():
            owners.setdefault(option.name, []).append((name, option))
    result = []
    for name, found in owners.items():
        option = found[0][1]
        if any(other.default != option.default for _, other in found):
            raise TypeError(f"builders disagree on the default of {name}: {[(b, o.default) for b, o in found]}")
        helps = list(dict.fromkeys(other.help for _, other in found))
        text = helps[0] if len(helps) == 1 else " ".join(f"{builder}: {other.help}" for builder, other in found)
        if len(found) < len(BUILDERS):
            text = f"({', '.join(builder for builder, _ in found)}) {text}"
        kind, default = option.type, option.default
        if typing.get_origin(kind) is tuple:
            kind = list[typing.get_args(kind)[0]]
            spec = field(default_factory=lambda default=default: list(default), metadata={"help": text})
        else:
            spec = field(default=default, metadata={"help": text})
        result.append((DATASET_OPTION_FIELDS.get(name, name), kind, spec))
    return result


DatasetOptions = make_dataclass("DatasetOptions", _dataset_option_fields())
DatasetOptions.__module__ = __name__
DatasetOptions.__doc__ = ("The dataset builders' options, derived from their config classes "
                          "(`dataset_builder.ReportDatasetConfig` and subclasses): one definition of their defaults.")


@dataclass
class DataArguments(DatasetOptions):
    """Where the studies come from and how they become training examples.

    `dataset` names the builder that reads `data_dir`; the builders' options (`report_sections`, `layout`,
    `split_file`, ... and `split_seed` for the builder's `seed`) are the fields of `DatasetOptions`, with the
    builders' own defaults.
    """

    dataset: str = field(
        default="iu_xray",
        metadata={"help": f"The dataset builder that reads data_dir: {', '.join(BUILDERS)} (docs/datasets.md)."},
    )
    data_dir: str | None = field(
        default=None, metadata={"help": "The folder the dataset builder reads (IU X-ray: any supported layout)."}
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Where the builder writes its Arrow files."})
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "Processes for the builder."})
    max_target_length: int = field(default=128, metadata={"help": "Longest label sequence, EOS included."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N training studies."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use only the first N validation studies."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Use only the first N test studies."})
    synthetic_studies: int = field(
        default=0,
        metadata={"help": "When > 0 and data_dir holds no data yet, first write this many synthetic studies "
                  "(python -m xray_report.synthetic.make_studies, IU X-ray's Kaggle layout) into data_dir."},
    )
    synthetic_seed: int = field(default=0, metadata={"help": "Seed of the synthetic studies."})

    def __post_init__(self) -> None:
        if self.dataset not in BUILDERS:
            raise ConfigError(f"dataset must be one of {list(BUILDERS)}, got {self.dataset!r}")
        options = builder_options(self.dataset)
        foreign = [item.name for item in fields(DatasetOptions)
                   if _builder_option(item.name) not in options and getattr(self, item.name) != _default(item)]
        if foreign:
            raise ConfigError(f"option(s) {foreign} do not apply to dataset {self.dataset} (see python train_hf.py "
                              "--help for which builders take them)")
        if self.max_target_length < 2:
            raise ConfigError(f"max_target_length must be at least 2, got {self.max_target_length}")
        if self.synthetic_studies < 0:
            raise ConfigError(f"synthetic_studies must be >= 0, got {self.synthetic_studies}")
        if self.synthetic_studies and self.dataset != "iu_xray":
            raise ConfigError(f"synthetic_studies writes IU X-ray's Kaggle layout, which dataset {self.dataset} does "
                              "not read: set dataset: iu_xray or synthetic_studies: 0")

    def builder_options(self) -> dict[str, Any]:
        """The options of the `dataset` builder, by the builder's names, as `dataset_builder.load_report_dataset`
        takes them."""
        options = builder_options(self.dataset)
        return {_builder_option(item.name): getattr(self, item.name) for item in fields(DatasetOptions)
                if _builder_option(item.name) in options}


def _default(item: Any) -> Any:
    return item.default_factory() if item.default is MISSING else item.default


@dataclass
class ReportTrainingArguments(Seq2SeqTrainingArguments):
    """`Seq2SeqTrainingArguments` with the report model's defaults and its staged-training options.

    Defaults changed from transformers': `remove_unused_columns=False` (the collator builds exactly the model
    inputs; True would silently drop `previous_pixel_values`) and `predict_with_generate=True`.
    """

    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Must stay False: the collator needs the raw image columns."}
    )
    predict_with_generate: bool = field(default=True, metadata={"help": "Generate reports during evaluation."})
    encoder_learning_rate: float | None = field(
        default=None, metadata={"help": "Peak learning rate of the image encoder (default: learning_rate)."}
    )
    bridge_learning_rate: float | None = field(
        default=None,
        metadata={"help": "Peak learning rate of the new parts joining image and text: the encoder-to-decoder "
                  "projection and the decoder's cross-attention (default: learning_rate)."},
    )
    freeze_encoder_steps: int = field(
        default=0, metadata={"help": "Keep the image encoder frozen (no gradients, BatchNorm statistics fixed) "
                             "for the first N optimizer steps."}
    )
    freeze_encoder_epochs: float = field(
        default=0.0, metadata={"help": "Keep the image encoder frozen for the first N epochs."}
    )
    early_stopping_patience: int | None = field(
        default=None, metadata={"help": "Stop after N evaluations without improvement of metric_for_best_model."}
    )
    early_stopping_threshold: float = field(default=0.0, metadata={"help": "Minimum improvement that counts."})
    stop_after_steps: int | None = field(
        default=None,
        metadata={"help": "End this session after N optimizer steps (a checkpoint is saved) without changing the "
                  "schedule: for time-limited machines; continue with --resume_from_checkpoint."},
    )
    eval_meteor: bool = field(default=True, metadata={"help": "Compute METEOR (needs java) in evaluations."})
    eval_protocol: str = field(
        default="default",
        metadata={"help": "NLG protocol of evaluations and the metrics file: default (whole normalised reports) or "
                  "r2gen (the R2Gen papers' references: vocabulary from split_file's train reports, or from the "
                  "train split when no split_file is given)."},
    )
    eval_r2gen_dataset: str = field(
        default="iu_xray", metadata={"help": "R2Gen cleaner and defaults for eval_protocol r2gen: iu_xray or mimic_cxr."}
    )
    eval_baselines: bool = field(
        default=True,
        metadata={"help": "Score the trivial baselines (most frequent train report, best single train report on "
                  "validation) next to the model in the metrics file."},
    )
    predict_split: str | None = field(
        default="test", metadata={"help": "Split to write predictions and metrics for after training (None: skip)."}
    )
    context_dropout: float = field(
        default=0.3,
        metadata={"help": "For a model that reads context (context_max_tokens > 0): the share of training studies "
                  "whose indication is left out at each step, so that one model writes reports with and without "
                  "context. Evaluation and prediction always give the indication a study has."},
    )
    abnormal_oversampling: float = field(
        default=1.0,
        metadata={"help": "Sampling weight of the training studies whose report states a finding (a positive "
                  "CheXpert observation other than No Finding, by the project's labeler) relative to the others; "
                  "1 samples every study once per epoch, >1 draws with replacement so that abnormal studies are "
                  "seen that many times more often (an epoch stays as many draws as studies)."},
    )
    image_augmentation: bool = field(
        default=False,
        metadata={"help": "Augment the training images: each view gets a random rotation (up to 10 degrees), shift "
                  "(up to 5%), zoom (0.9-1.1) and brightness / contrast change (up to 20%); no flips, which would "
                  "contradict a report that names a side. Evaluation and generation see the images as they are."},
    )
    image_augmentation_kwargs: dict | str | None = field(
        default=None,
        metadata={"help": "Other ranges for image_augmentation, as a JSON object (a mapping in a YAML config) of "
                  "degrees, translate, scale ([low, high]), brightness and contrast; e.g. "
                  "'{\"degrees\": 0, \"scale\": [1, 1]}' for shifts and brightness / contrast only."},
    )

    def __post_init__(self) -> None:
        if self.remove_unused_columns:
            raise ConfigError(
                "remove_unused_columns must be False: Trainer would drop the image columns the collator needs "
                "(and previous_pixel_values would never reach the model)."
            )
        super().__post_init__()
        if self.eval_protocol not in PROTOCOLS:
            raise ConfigError(f"eval_protocol must be one of {list(PROTOCOLS)}, got {self.eval_protocol!r}")
        if self.eval_r2gen_dataset not in R2GEN_DATASETS:
            raise ConfigError(
                f"eval_r2gen_dataset must be one of {sorted(R2GEN_DATASETS)}, got {self.eval_r2gen_dataset!r}"
            )
        if self.freeze_encoder_steps < 0 or self.freeze_encoder_epochs < 0:
            raise ConfigError("freeze_encoder_steps and freeze_encoder_epochs must be >= 0")
        if not self.abnormal_oversampling > 0:
            raise ConfigError(f"abnormal_oversampling must be > 0, got {self.abnormal_oversampling}")
        if not 0 <= self.context_dropout <= 1:
            raise ConfigError(f"context_dropout must be between 0 and 1, got {self.context_dropout}")
        if self.early_stopping_patience is not None and not (self.load_best_model_at_end and self.metric_for_best_model):
            raise ConfigError(
                "early_stopping_patience needs load_best_model_at_end: true and a metric_for_best_model "
                "(e.g. bleu_4 or ce_micro_f1) with matching eval_strategy and save_strategy."
            )
        if (self.freeze_encoder_steps or self.freeze_encoder_epochs) and self.ddp_find_unused_parameters is False:
            raise ConfigError(
                "freeze_encoder_steps/freeze_encoder_epochs need ddp_find_unused_parameters: true under DDP "
                "(the frozen encoder's parameters get no gradients)"
            )
        if (self.freeze_encoder_steps or self.freeze_encoder_epochs) and self.ddp_find_unused_parameters is None:
            self.ddp_find_unused_parameters = True  # Trainer would pick False with activation checkpointing
        if self.stop_after_steps is not None and self.stop_after_steps < 1:
            raise ConfigError(f"stop_after_steps must be >= 1, got {self.stop_after_steps}")
        self.image_augmentation_kwargs = _augmentation_kwargs(self.image_augmentation_kwargs, self.image_augmentation)


def _augmentation_kwargs(value: dict | str | None, augment: bool) -> dict[str, Any]:
    """`image_augmentation_kwargs` as a checked mapping (a JSON string is parsed; `{}` when not given).

    Raises:
        ConfigError: not a JSON object, an unknown name or a value out of range, or given without
            `image_augmentation: true` (it would change nothing).
    """
    if value in (None, "", {}):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise ConfigError(f"image_augmentation_kwargs is not valid JSON: {error}") from error
    if not isinstance(value, dict):
        raise ConfigError(f"image_augmentation_kwargs must be a JSON object, got {type(value).__name__}")
    if not augment:
        raise ConfigError("image_augmentation_kwargs is given but image_augmentation is false: set it to true")
    try:
        ImageAugmentation.from_kwargs(value)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"image_augmentation_kwargs: {error}") from error
    return value


ARGUMENT_CLASSES = (ModelArguments, DataArguments, ReportTrainingArguments)


def _known_fields() -> dict[str, str]:
    """Field name -> dataclass name, over the three argument classes."""
    return {item.name: cls.__name__ for cls in ARGUMENT_CLASSES for item in fields(cls) if item.init}


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Reads a flat YAML/JSON mapping, checks its keys and resolves its relative paths against its folder.

    Raises:
        ConfigError: unreadable file, not a mapping, unknown keys, or null values (names file and key).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the config file: {error}") from error
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {error}") from error
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a mapping of option names to values, got {type(data).__name__}")
    known = _known_fields()
    unknown = sorted(key for key in data if key not in known)
    if unknown:
        raise ConfigError(f"{path}: unknown option(s) {unknown}; options are the fields of "
                          f"{', '.join(cls.__name__ for cls in ARGUMENT_CLASSES)} (see python train_hf.py --help)")
    nulls = sorted(key for key, value in data.items() if value is None)
    if nulls:
        raise ConfigError(f"{path}: option(s) {nulls} are null; leave a key out to keep its default")
    for key in PATH_FIELDS:
        value = data.get(key)
        if isinstance(value, str) and _is_relative_path(key, value, path.parent):
            data[key] = str((path.parent / value).expanduser().resolve())
    return data


_HUB_OR_PATH_FIELDS = ("model_name_or_path", "encoder_name_or_path", "decoder_name_or_path", "tokenizer_name_or_path")


def _is_relative_path(key: str, value: str, base: Path) -> bool:
    """Whether `value` of option `key` is a relative path to resolve against `base`.

    Options that accept a hub id (`gpt2`, `owner/name`) count as paths only when they start with `.` or when
    the path exists relative to the config file.
    """
    if os.path.isabs(value) or value.startswith("~") or value == BYTE_LEVEL_TOKENIZER:
        return False
    if key not in _HUB_OR_PATH_FIELDS:
        return True
    return value.startswith(".") or (base / value).exists()


def config_to_tokens(config: dict[str, Any]) -> list[str]:
    """Turns a config mapping into `--name value` tokens for `HfArgumentParser` (lists spread, dicts as JSON)."""
    tokens: list[str] = []
    for key, value in config.items():
        tokens.append(f"--{key}")
        if isinstance(value, bool):
            tokens.append("true" if value else "false")
        elif isinstance(value, (list, tuple)):
            tokens.extend(str(item) for item in value)
        elif isinstance(value, dict):
            tokens.append(json.dumps(value))
        else:
            tokens.append(str(value))
    return tokens


_PERCENT_TOKEN = re.compile(r"%%|%\(\w+\)[a-zA-Z]|%")


def _escape_percent(text: str) -> str:
    """Doubles every `%` of a help string that argparse would read as a format specifier (keeps `%%`, `%(default)s`)."""
    return _PERCENT_TOKEN.sub(lambda match: "%%" if match.group(0) == "%" else match.group(0), text)


def build_parser() -> HfArgumentParser:
    """The `HfArgumentParser` over `ARGUMENT_CLASSES`, with every help string safe for `--help`.

    argparse formats help strings with `%`, so a plain `%` in a field's `metadata["help"]` ("up to 5%") makes
    `--help` raise. Escaping here covers every field of the three dataclasses, transformers' included.
    """
    parser = HfArgumentParser(ARGUMENT_CLASSES)
    for action in parser._actions:
        if action.help:
            action.help = _escape_percent(action.help)
    return parser


def parse_config(
    argv: Sequence[str] | None = None, default_config: str | os.PathLike | None = None
) -> tuple[ModelArguments, DataArguments, ReportTrainingArguments]:
    """Parses `[CONFIG.yaml|CONFIG.json] [--option value ...]` into the three argument dataclasses.

    Args:
        argv: the command-line tokens (without the program name); `None` reads `sys.argv[1:]`.
        default_config: the config used when `argv` does not start with a config file.

    Raises:
        ConfigError: a bad config file or option (named).
    """
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    config_path = None
    if argv and not argv[0].startswith("-"):
        config_path = argv.pop(0)
    elif default_config is not None:
        config_path = default_config
    tokens = config_to_tokens(read_config_file(config_path)) if config_path else []
    parser = build_parser()
    try:
        model_args, data_args, training_args = parser.parse_args_into_dataclasses(
            args=tokens + argv, look_for_args_file=False
        )
    except ConfigError as error:
        raise ConfigError(f"{config_path or 'command line'}: {error}") from error
    except ValueError as error:
        raise ConfigError(f"{config_path or 'command line'}: {error}") from error
    return model_args, data_args, training_args


__all__ = [
    "ARGUMENT_CLASSES",
    "BYTE_LEVEL_TOKENIZER",
    "ConfigError",
    "DataArguments",
    "ModelArguments",
    "ReportTrainingArguments",
    "build_parser",
    "config_to_tokens",
    "parse_config",
    "read_config_file",
]
