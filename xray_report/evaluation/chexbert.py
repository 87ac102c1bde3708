"""CheXbert labels of the 14 CheXpert observations, and the CE scores papers report with them ("F1-CheXbert").

CheXbert (Smit et al., EMNLP 2020; https://github.com/stanfordmlgroup/CheXbert) is ``bert-base-uncased`` with 14
linear heads on the ``[CLS]`` state: 13 of 4 classes (blank, positive, negative, uncertain) for the observations in
its order :data:`CHEXBERT_CONDITIONS`, and 1 of 2 classes (blank, positive) for No Finding. Its public checkpoint
(``chexbert.pth``, a ``torch.save`` dict whose ``"model_state_dict"`` holds the weights of a ``DataParallel``-wrapped
model: ``module.bert.*`` and ``module.linear_heads.{0..13}.{weight,bias}``) is on the Hugging Face hub as
``StanfordAIMI/RRG_scorers`` / ``chexbert.pth`` (:data:`CHEXBERT_HUB_ID`), the file the f1chexbert and RadEval
packages download. This module builds the architecture with transformers and loads that file, from the hub or from
a local path; reports are tokenised as CheXbert does (``bert-base-uncased`` word pieces, whitespace collapsed, cut to
512 ids: ``[CLS]``, the first 510 pieces, ``[SEP]``).

No package is used: f1chexbert 0.0.2 calls ``hf_hub_download(force_filename=...)``, which huggingface_hub 2 rejects;
RadEval 2.2.1 installs with transformers 5 but pulls spaCy 3.7, medspaCy and Stanza (its resolution downgrades numpy
2.4 to 1.26) and downloads ``bert-base-uncased`` and the checkpoint inside its constructor, with no local path.

Scores (:func:`chexbert_efficacy`): both the references and the generated reports are labelled; binarisation is
named in the result: ``uncertain_as_positive=False`` is CheXbert's "1 vs rest" (only class positive counts),
``True`` counts uncertain as positive (the F1-CheXbert convention of f1chexbert / RadEval, ``mode="rrg"``). Micro,
macro and example-based precision / recall / F1 for the 14 observations and for the five of the CheXbert papers
(:data:`xray_report.evaluation.clinical_efficacy.CHEXBERT_5`), computed as for the rule-based labeler.

When the weights cannot be had (offline, no such file, a damaged checkpoint), :func:`chexbert_metrics` returns the
reason instead of scores: CheXbert is then *unavailable*, never 0.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Protocol, Union

from .chexpert_labeler import OBSERVATIONS, Label
from .clinical_efficacy import CHEXBERT_5, clinical_efficacy_from_labels

logger = logging.getLogger(__name__)

CHEXBERT_HUB_ID = "StanfordAIMI/RRG_scorers"
"""Hub repository of the public CheXbert checkpoint."""
CHEXBERT_FILENAME = "chexbert.pth"
"""File name of the checkpoint in that repository (and in a local folder)."""
CHEXBERT_TOKENIZER = "bert-base-uncased"
"""The tokenizer CheXbert was trained with (a hub id or a local folder with its files)."""
MAX_LENGTH = 512

CHEXBERT_CONDITIONS: tuple[str, ...] = (
    "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema", "Consolidation",
    "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other", "Fracture", "Support Devices",
    "No Finding",
)
"""The heads' order (CheXbert's ``CONDITIONS``); the last head is No Finding."""

CLASS_LABELS: tuple[Label, ...] = (Label.NOT_MENTIONED, Label.POSITIVE, Label.NEGATIVE, Label.UNCERTAIN)
"""Classes of the 13 four-way heads (CheXbert's ``CLASS_MAPPING``: blank, positive, negative, uncertain)."""
NO_FINDING_LABELS: tuple[Label, ...] = (Label.NOT_MENTIONED, Label.POSITIVE)
"""Classes of the No Finding head (blank, positive)."""


class CheXbertUnavailable(RuntimeError):
    """CheXbert cannot be loaded; the message says why (no weights offline, no such file, a damaged checkpoint)."""


class ReportLabeler(Protocol):
    """Anything that labels reports with the 14 observations (:class:`CheXbert`, or a stand-in in tests)."""

    def label_reports(self, reports: Sequence[str]) -> list[dict[str, Label]]: ...


def _torch() -> Any:
    import torch  # imported when CheXbert is used, not when the scoring library is

    return torch


def build_chexbert_model(config: Any) -> Any:
    """The CheXbert architecture for a ``BertConfig``: ``bert`` (a ``BertModel``), ``dropout`` and ``linear_heads``.

    Its ``forward(input_ids, attention_mask)`` returns 14 logit tensors, 13 of shape (batch_size, 4) and the last
    (No Finding) of shape (batch_size, 2).
    """
    torch = _torch()
    from transformers import BertModel

    class CheXbertModel(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = BertModel(config)
            self.dropout = torch.nn.Dropout(0.1)
            hidden = config.hidden_size
            self.linear_heads = torch.nn.ModuleList([torch.nn.Linear(hidden, 4) for _ in range(13)])
            self.linear_heads.append(torch.nn.Linear(hidden, 2))

        def forward(self, input_ids: Any, attention_mask: Any) -> list[Any]:
            cls = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[:, 0]
            cls = self.dropout(cls)
            return [head(cls) for head in self.linear_heads]

    return CheXbertModel()


def _resolve_checkpoint(source: Union[str, Path]) -> Path:
    """A local ``chexbert.pth`` (a file, or a folder holding one) or the file of a hub repository."""
    path = Path(source).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        if (path / CHEXBERT_FILENAME).is_file():
            return path / CHEXBERT_FILENAME
        raise CheXbertUnavailable(f"{path}: no {CHEXBERT_FILENAME} in this folder")
    if str(source).startswith((".", "/", "~")) or not re.fullmatch(r"[\w.-]+/[\w.-]+", str(source)):
        raise CheXbertUnavailable(f"{source}: no such file or folder, and not a hub repository id")
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo_id=str(source), filename=CHEXBERT_FILENAME))
    except Exception as error:  # offline, no such repository or file, no access
        raise CheXbertUnavailable(
            f"CheXbert weights {source}/{CHEXBERT_FILENAME} could not be had from the hub "
            f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}); "
            "pass a local path to chexbert.pth"
        ) from error


def read_chexbert_state_dict(checkpoint: Union[str, Path]) -> dict[str, Any]:
    """The weights of a CheXbert checkpoint, with the ``module.`` prefix of ``DataParallel`` removed.

    Accepts the public file's layout (``{"model_state_dict": {...}, ...}``) and a bare state dict. A
    ``bert.embeddings.position_ids`` buffer (written by some transformers 3-4 versions) is dropped: transformers 5
    does not keep it.

    Raises:
        CheXbertUnavailable: the file cannot be read as a CheXbert checkpoint.
    """
    torch = _torch()
    try:
        loaded = torch.load(str(checkpoint), map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheXbertUnavailable(f"{checkpoint}: not a readable CheXbert checkpoint ({type(error).__name__}: {error})") from error
    weights = loaded.get("model_state_dict", loaded) if isinstance(loaded, Mapping) else None
    if not isinstance(weights, Mapping) or not any("linear_heads." in key for key in weights):
        raise CheXbertUnavailable(f"{checkpoint}: no CheXbert weights (expected 'model_state_dict' with linear_heads.*)")
    state = {key.removeprefix("module."): value for key, value in weights.items()}
    state.pop("bert.embeddings.position_ids", None)
    return state


def _config(config: Any) -> Any:
    from transformers import BertConfig

    if config is None:
        return BertConfig()  # the defaults are bert-base-uncased's, the backbone CheXbert was trained from
    if isinstance(config, BertConfig):
        return config
    return BertConfig.from_pretrained(str(config))


@dataclass
class CheXbert:
    """A loaded CheXbert: the model, its tokenizer and where the weights came from.

    Attributes:
        model: the module of :func:`build_chexbert_model`, in eval mode.
        tokenizer: the ``bert-base-uncased`` tokenizer (or the one given).
        source: the checkpoint file that was loaded.
        batch_size: reports labelled per forward pass.
    """

    model: Any
    tokenizer: Any
    source: str
    batch_size: int = 16

    def label_reports(self, reports: Sequence[str]) -> list[dict[str, Label]]:
        """Label each report: observation -> :class:`Label`, for all 14 observations (CheXpert's order)."""
        torch = _torch()
        labels: list[dict[str, Label]] = []
        texts = [" ".join(str(report).split()) for report in reports]
        device = next(self.model.parameters()).device
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(texts[start : start + self.batch_size], padding=True, truncation=True,
                                   max_length=MAX_LENGTH, return_tensors="pt")
            with torch.no_grad():
                logits = self.model(batch["input_ids"].to(device), batch["attention_mask"].to(device))
            classes = torch.stack([head.argmax(dim=1) for head in logits], dim=1).tolist()
            labels.extend(decode_classes(row) for row in classes)
        return labels


def decode_classes(classes: Sequence[int]) -> dict[str, Label]:
    """One report's 14 head classes (CheXbert's order) -> observation -> :class:`Label` (CheXpert's order)."""
    if len(classes) != len(CHEXBERT_CONDITIONS):
        raise ValueError(f"expected {len(CHEXBERT_CONDITIONS)} classes, got {len(classes)}")
    by_name = {name: (NO_FINDING_LABELS if name == "No Finding" else CLASS_LABELS)[int(value)]
               for name, value in zip(CHEXBERT_CONDITIONS, classes)}
    return {name: by_name[name] for name in OBSERVATIONS}


def load_chexbert(
    source: Union[str, Path] = CHEXBERT_HUB_ID,
    *,
    tokenizer: Union[str, Path] = CHEXBERT_TOKENIZER,
    config: Any = None,
    device: str = "cpu",
    batch_size: int = 16,
) -> CheXbert:
    """Load CheXbert from a hub repository id (default: the public checkpoint) or a local ``chexbert.pth``.

    Args:
        source: hub id of a repository holding ``chexbert.pth``, the file itself, or a folder holding it.
        tokenizer: hub id or local folder of the tokenizer (``bert-base-uncased``).
        config: a ``BertConfig``, or a path / hub id of one; default: ``BertConfig()``, whose values are those of
            ``bert-base-uncased`` (CheXbert's backbone).
        device: where to run it.
        batch_size: reports per forward pass.

    Raises:
        CheXbertUnavailable: the weights or the tokenizer cannot be had, or the checkpoint does not fit the
            architecture (the message names the keys).
    """
    from transformers import AutoTokenizer

    checkpoint = _resolve_checkpoint(source)
    state = read_chexbert_state_dict(checkpoint)
    try:
        model = build_chexbert_model(_config(config))
    except Exception as error:
        raise CheXbertUnavailable(f"CheXbert config {config}: {type(error).__name__}: {error}") from error
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheXbertUnavailable(
            f"{checkpoint}: does not fit the CheXbert architecture (missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]})"
        )
    try:
        loaded_tokenizer = AutoTokenizer.from_pretrained(str(tokenizer))
    except Exception as error:
        raise CheXbertUnavailable(
            f"CheXbert tokenizer {tokenizer} could not be had ({type(error).__name__}); pass a local folder"
        ) from error
    model.eval().to(device)
    logger.info("CheXbert loaded from %s", checkpoint)
    return CheXbert(model, loaded_tokenizer, str(checkpoint), batch_size)


def uncertain_convention(uncertain_as_positive: bool) -> str:
    """The name of a binarisation, as results record it."""
    return ("uncertain counted as positive (F1-CheXbert convention)" if uncertain_as_positive
            else "uncertain counted as negative (CheXbert: positive class vs rest)")


def chexbert_efficacy(
    references: Sequence[str],
    predictions: Sequence[str],
    labeler: ReportLabeler,
    *,
    uncertain_as_positive: bool = False,
) -> dict[str, object]:
    """CheXbert-labelled CE scores of generated reports against their references.

    Returns:
        ``{"labeler": ..., "uncertain": <convention>, "all_14": {...}, "chexbert_5": {...}, "reference_labels":
        [...], "generated_labels": [...]}``; each table is
        :meth:`xray_report.evaluation.clinical_efficacy.BinaryScores.to_dict` (micro, macro, example, per
        observation).
    """
    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} references but {len(predictions)} predictions")
    reference_labels = labeler.label_reports(list(references))
    generated_labels = labeler.label_reports(list(predictions))
    tables = {
        name: clinical_efficacy_from_labels(reference_labels, generated_labels, observations,
                                            uncertain_as_positive=uncertain_as_positive).to_dict()
        for name, observations in (("all_14", OBSERVATIONS), ("chexbert_5", CHEXBERT_5))
    }
    return {
        "labeler": getattr(labeler, "source", type(labeler).__name__),
        "uncertain": uncertain_convention(uncertain_as_positive),
        **tables,
        "reference_labels": [{k: v.value for k, v in labels.items()} for labels in reference_labels],
        "generated_labels": [{k: v.value for k, v in labels.items()} for labels in generated_labels],
    }


@functools.lru_cache(maxsize=2)
def _cached(source: str) -> CheXbert:
    return load_chexbert(source)


def chexbert_metrics(
    references: Sequence[str],
    predictions: Sequence[str],
    source: Union[str, Path, ReportLabeler, None],
    *,
    uncertain_as_positive: bool = False,
) -> tuple[Optional[dict[str, object]], Optional[str]]:
    """What the scorer calls: CheXbert CE scores, or why there are none.

    Args:
        references / predictions: the reports.
        source: a hub id or local path of the weights (loaded once per process), a loaded labeler, or ``None``
            (CheXbert not asked for).

    Returns:
        ``(scores, None)`` with the dict of :func:`chexbert_efficacy`; ``(None, reason)`` when CheXbert is
        unavailable; ``(None, None)`` when it was not asked for.
    """
    if source is None:
        return None, None
    try:
        labeler = source if hasattr(source, "label_reports") else _cached(str(source))
    except CheXbertUnavailable as error:
        logger.warning("CheXbert unavailable: %s", error)
        return None, str(error)
    return chexbert_efficacy(references, predictions, labeler, uncertain_as_positive=uncertain_as_positive), None


def chexbert_corpus_metrics(scores: Mapping[str, object]) -> dict[str, float]:
    """Flat keys of the CheXbert scores for a corpus table: ``chexbert_{14,5}_{micro,macro,example}_{p,r,f1}``."""
    flat: dict[str, float] = {}
    for table, short in (("all_14", "14"), ("chexbert_5", "5")):
        values = scores[table]
        assert isinstance(values, Mapping)
        for average in ("micro", "macro", "example"):
            for key, value in values[average].items():
                flat[f"chexbert_{short}_{average}_{key}"] = value
    return flat


__all__ = [
    "CHEXBERT_CONDITIONS",
    "CHEXBERT_FILENAME",
    "CHEXBERT_HUB_ID",
    "CHEXBERT_TOKENIZER",
    "CLASS_LABELS",
    "CheXbert",
    "CheXbertUnavailable",
    "NO_FINDING_LABELS",
    "ReportLabeler",
    "build_chexbert_model",
    "chexbert_corpus_metrics",
    "chexbert_efficacy",
    "chexbert_metrics",
    "decode_classes",
    "load_chexbert",
    "read_chexbert_state_dict",
    "uncertain_convention",
]
