"""How a set of generated reports is scored: one `ScoringOptions` passed to every scorer.

The NLG metrics (:mod:`xray_report.evaluation.nlg`), the trivial baselines (:mod:`xray_report.evaluation.baselines`),
the scoring engine (:mod:`xray_report.evaluation.scoring`) and training's ``compute_metrics`` and predictions writer
all take the same options, so a model and its baselines are always scored alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Optional

if TYPE_CHECKING:
    from .nlg import R2GenVocabulary

Protocol = Literal["default", "r2gen"]
PROTOCOLS: tuple[str, ...] = ("default", "r2gen")
"""The NLG protocols (``ScoringOptions.protocol``, ``--protocol``, training's ``eval_protocol``)."""


@dataclass(frozen=True)
class ScoringOptions:
    """How a set of predictions is scored (the same for the model and for its baselines).

    Attributes:
        meteor: compute METEOR (needs java); ``False`` reports it unavailable.
        uncertain_as_positive: clinical efficacy counts uncertain labels as positive (default: as negative).
        protocol: NLG protocol, ``"default"`` or ``"r2gen"`` (see :mod:`xray_report.evaluation.nlg`).
        vocabulary: the R2Gen vocabulary of the split's train reports (required by ``"r2gen"``, ignored otherwise).
        chexbert: hub id or local path of CheXbert weights: also score clinical efficacy with CheXbert labels
            (:mod:`xray_report.evaluation.chexbert`); ``None`` (the default): not computed.

    Raises:
        ValueError: an unknown protocol, or ``"r2gen"`` without a vocabulary.
    """

    meteor: bool = True
    uncertain_as_positive: bool = False
    protocol: str = "default"
    vocabulary: Optional["R2GenVocabulary"] = None
    chexbert: Optional[str] = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; expected one of {list(PROTOCOLS)}")
        if self.protocol == "r2gen" and self.vocabulary is None:
            raise ValueError("protocol 'r2gen' needs the vocabulary of the split's train reports (R2GenVocabulary)")


__all__ = ["PROTOCOLS", "Protocol", "ScoringOptions"]
