"""How closely the rule-based labeler follows the Stanford CheXpert labeler's own lists and conventions.

Usage::

    python -m research.labeler.chexpert_conformance --output-dir outputs/labeler_conformance

Two sentence sets are built from the CheXpert labeler's published lists (``chexpert_phrases.json`` next to this file: its
``phrases/mention`` and ``phrases/unmention`` files) and from the cues of its negation and uncertainty rules
(``patterns/negation.txt``, ``pre_negation_uncertainty.txt``, ``post_negation_uncertainty.txt``):

* **phrase templates**: every mention phrase in positive, negative and uncertain sentences (finding phrases:
  ``"There is {p}."``, ``"No {p}."``, ``"Possible {p}."`` ...; anatomy phrases such as ``"heart size"``:
  ``"The {p} is enlarged."``, ``"The {p} is normal."``, ``"The {p} is stable."``);
* **trigger sentences**: each negation / uncertainty cue of those rules around five findings
  (``"Interval resolution of {x}."``, ``"No new {x}."``, ``"{X} or {y}."`` ...).

The expected labels are CheXpert's: its mention extraction is reproduced exactly (lowercased substring match of
every phrase, minus overlaps with an unmention phrase, including the positional unmentions it derives for the
heart and mediastinum phrases), every mention takes the polarity the sentence's cue gives it, and the mentions are
aggregated as CheXpert does (positive > uncertain > negative; "CHF" / "heart failure" also make Cardiomegaly
uncertain; No Finding positive only when no mention other than a support device is positive or uncertain, the
"other finding" phrases of its No Finding list included). A sentence agrees when all 14 labels are equal.

Writes ``conformance.json`` (both agreement figures, per observation, and every disagreement) and
``conformance.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from xray_report.evaluation.chexpert_labeler import OBSERVATIONS, Label, aggregate, label_report

logger = logging.getLogger(__name__)

PHRASES_FILE = Path(__file__).with_name("chexpert_phrases.json")
NO_FINDING = "No Finding"
SUPPORT_DEVICES = "Support Devices"

# Stems of the phrase lists completed to a word for the sentences (the stem still matches the word).
_COMPLETIONS = {
    "atelecta": "atelectasis", "consolidat": "consolidation", "opaci": "opacity", "calcifi": "calcification",
    "degenera": "degenerative change", "inflam": "inflammation", "prominen": "prominence",
    "hyperinflat": "hyperinflated lungs", "reticula": "reticulation", "defib": "defibrillator",
    "arthroplast": "arthroplasty", "blunt": "blunting", "atherosclero": "atherosclerosis",
    "drain": "drain", "interstitial marking": "interstitial markings", "reticular marking": "reticular markings",
    "support": "support devices", "nodul": "nodule",
}
_ANATOMY = {
    "Cardiomegaly": ("the heart", "heart size", "cardiac size", "cardiac shadow", "cardiac contour", "cardiac silhouette"),
    "Enlarged Cardiomediastinum": ("mediastinum", "cardiomediastinum", "contour", "mediastinal configuration",
                                   "mediastinal silhouette", "pericardial silhouette", "cardiac silhouette and vascularity"),
}
FINDING_TEMPLATES: dict[Label, tuple[str, ...]] = {
    Label.POSITIVE: ("There is {p}.", "{P} is present."),
    Label.NEGATIVE: ("No {p}.", "There is no {p}.", "No evidence of {p}.", "Without {p}."),
    Label.UNCERTAIN: ("Possible {p}.", "{P} cannot be excluded.", "Suspicious for {p}.", "Findings may represent {p}."),
}
ANATOMY_TEMPLATES: dict[Label, tuple[str, ...]] = {
    Label.POSITIVE: ("The {p} is enlarged.",),
    Label.NEGATIVE: ("The {p} is normal.", "The {p} is within normal limits."),
    Label.UNCERTAIN: ("The {p} is stable.", "The {p} is unchanged."),
}
TRIGGER_FINDINGS: tuple[str, ...] = ("pneumothorax", "pleural effusion", "consolidation", "pulmonary edema", "atelectasis")
# Each cue of CheXpert's rules in a sentence ({x}: the finding; {y}: a second finding, same polarity).
TRIGGERS: dict[Label, tuple[str, ...]] = {
    Label.NEGATIVE: (
        "No {x}.", "There is no {x}.", "No evidence of {x}.", "There is no evidence of {x}.", "Without evidence of {x}.",
        "No findings to suggest {x}.", "Negative for {x}.", "Free of {x}.", "Clear of {x}.", "Resolution of {x}.",
        "Interval resolution of {x}.", "{X} has resolved.", "{X} is no longer seen.", "History of {x}.",
        "Rule out {x}.", "Removal of {x}.", "Disappearance of {x}.", "Without development of {x}.",
        "No development of {x}.", "No focus of {x}.", "No area of {x}.", "No evidence of developing {x}.",
        "No obvious associated {x}.", "{X} has cleared.", "The lungs are clear without {x}.", "No {x} or {y}.",
        "No {x}, {y} or pneumonia.",
    ),
    Label.UNCERTAIN: (
        "Cannot exclude {x}.", "{X} is not excluded.", "No new {x}.", "Cannot rule out {x}.",
        "No evidence to rule out {x}.", "No definite {x}.", "No obvious {x}.", "Suspicious for {x}.",
        "Findings may represent {x}.", "Worrisome for {x}.", "Possible {x}.", "Possibly {x}.", "Probable {x}.",
        "Questionable {x}.", "Suspected {x}.", "{X} is suspected.", "Question of {x}.", "Suggestion of {x}.",
        "Concern for {x}.", "Suspicion for {x}.", "Consider {x}.", "This may be {x}.", "Maybe due to {x}.",
        "Findings may be due to {x}.", "Findings could be related to {x}.", "Findings may be compatible with {x}.",
        "Differential diagnosis includes {x}.", "Correlate clinically for {x}.", "{X} could be present.",
        "{X} is poorly evaluated.", "{X} is not well visualized.", "Findings may be consistent with {x}.",
        "{X} versus {y}.", "{X} or {y}.", "{X} and/or {y}.", "Findings are secondary to {x}.",
        "Presumably {x}.", "Findings possibly reflecting {x}.",
    ),
}


@dataclass(frozen=True)
class TemplateSentence:
    """One sentence of a conformance set with CheXpert's expected labels.

    Attributes:
        text: the sentence.
        set_name: ``"phrase_templates"`` or ``"trigger_sentences"``.
        observation: the observation the sentence was built for.
        phrase: the list phrase or the trigger template it exercises.
        expected: CheXpert's labels for all 14 observations.
    """

    text: str
    set_name: str
    observation: str
    phrase: str
    expected: dict[str, Label]


@lru_cache(maxsize=1)
def chexpert_phrases() -> dict[str, dict[str, list[str]]]:
    """The CheXpert labeler's mention and unmention phrases (``_`` turned into a space as it does)."""
    data = json.loads(PHRASES_FILE.read_text(encoding="utf-8"))
    return {kind: {obs: [p.replace("_", " ") for p in phrases] for obs, phrases in data[kind].items()}
            for kind in ("mention", "unmention")}


@lru_cache(maxsize=1)
def _unmentions() -> dict[str, list[str]]:
    """Unmention phrases plus the positional ones CheXpert derives for the heart and mediastinum phrases."""
    phrases = chexpert_phrases()
    unmentions = {obs: list(items) for obs, items in phrases["unmention"].items()}
    positions = [a + b for a in ("over the", "overly the", "in the") for b in ("", " superior", " left", " right")]
    unmentions["Cardiomegaly"] = [
        f"{position} {mention.replace('the ', '')}" for position in positions
        for mention in phrases["mention"]["Cardiomegaly"] if mention not in ("cardiomegaly", "cardiac enlargement")
    ]
    unmentions["Enlarged Cardiomediastinum"] = [
        f"{position} {mention}" for position in positions for mention in phrases["mention"]["Enlarged Cardiomediastinum"]
    ]
    return unmentions


def _phrase_pattern(phrase: str) -> str:
    """A phrase as a substring pattern; a space at either end (``_`` in the lists) is read as a word boundary."""
    core = re.escape(phrase.strip())
    return (r"(?<![\w-])" if phrase.startswith(" ") else "") + core + (r"(?![\w-])" if phrase.endswith(" ") else "")


def chexpert_mentions(sentence: str) -> list[tuple[str, str]]:
    """(observation, phrase) of every mention CheXpert's extraction finds in ``sentence`` (lowercased substrings)."""
    text = sentence.lower()
    found = []
    for observation, phrases in chexpert_phrases()["mention"].items():
        blocked = [m.span() for u in _unmentions().get(observation, ()) for m in re.finditer(re.escape(u), text)]
        for phrase in phrases:
            for match in re.finditer(_phrase_pattern(phrase), text):
                if not any(match.start() < end and start < match.end() for start, end in blocked):
                    found.append((observation, phrase))
    return found


# Mentions CheXpert's post-negation rules always make uncertain unless a negation cue already applied.
_ALWAYS_UNCERTAIN = ("vascular congestion", "pulmonary congestion", "indistinctness", "vascular prominence")


def chexpert_expected(mentions: Iterable[tuple[str, str]], cue: Label) -> dict[str, Label]:
    """CheXpert's labels when every mention takes the value of the sentence's ``cue``, then its aggregation."""
    per_observation: dict[str, list[Label]] = {}
    no_finding = True
    for observation, phrase in mentions:
        polarity = Label.UNCERTAIN if cue is Label.POSITIVE and phrase in _ALWAYS_UNCERTAIN else cue
        if observation != SUPPORT_DEVICES and polarity in (Label.POSITIVE, Label.UNCERTAIN):
            no_finding = False
        if observation == NO_FINDING:
            continue
        if polarity in (Label.POSITIVE, Label.UNCERTAIN) and phrase in ("chf", "heart failure"):
            per_observation.setdefault("Cardiomegaly", []).append(Label.UNCERTAIN)
        per_observation.setdefault(observation, []).append(polarity)
    labels = {name: aggregate(per_observation.get(name, ())) for name in OBSERVATIONS}
    labels[NO_FINDING] = Label.POSITIVE if no_finding else Label.NOT_MENTIONED
    return labels


def _sentence(template: str, **words: str) -> str:
    filled = template.format(**words, **{k.upper(): v for k, v in words.items()})
    return filled[0].upper() + filled[1:]


def phrase_templates() -> list[TemplateSentence]:
    """Every mention phrase of the CheXpert lists in positive, negative and uncertain sentences."""
    sentences = []
    for observation, phrases in chexpert_phrases()["mention"].items():
        for phrase in phrases:
            anatomy = phrase.strip() in _ANATOMY.get(observation, ())
            templates = ANATOMY_TEMPLATES if anatomy else FINDING_TEMPLATES
            words = phrase.strip()
            words = _COMPLETIONS.get(words, words)
            for polarity, forms in templates.items():
                for form in forms:
                    text = _sentence(form.replace("{p}", "{x}").replace("{P}", "{X}"), x=words.removeprefix("the "))
                    expected = chexpert_expected(chexpert_mentions(text), polarity)
                    sentences.append(TemplateSentence(text, "phrase_templates", observation, phrase, expected))
    return sentences


def trigger_sentences() -> list[TemplateSentence]:
    """Each negation / uncertainty cue of CheXpert's rules around each of :data:`TRIGGER_FINDINGS`."""
    sentences = []
    for polarity, templates in TRIGGERS.items():
        for template in templates:
            for index, finding in enumerate(TRIGGER_FINDINGS):
                other = TRIGGER_FINDINGS[(index + 1) % len(TRIGGER_FINDINGS)]
                text = _sentence(template, x=finding, y=other)
                mentions = chexpert_mentions(text)
                observation = mentions[0][0] if mentions else ""
                sentences.append(TemplateSentence(text, "trigger_sentences", observation, template,
                                                  chexpert_expected(mentions, polarity)))
    return sentences


def agreement(sentences: Sequence[TemplateSentence]) -> dict[str, object]:
    """Share of sentences whose 14 labels all equal CheXpert's, per observation too, and the disagreements."""
    disagreements = []
    per_observation: dict[str, list[int]] = {}
    for sentence in sentences:
        labels = label_report(sentence.text)
        agrees = all(labels[name] is sentence.expected[name] for name in OBSERVATIONS)
        per_observation.setdefault(sentence.observation, []).append(int(agrees))
        if not agrees:
            disagreements.append({
                "text": sentence.text,
                "phrase": sentence.phrase,
                "differs": {name: {"chexpert": sentence.expected[name].value, "ours": labels[name].value}
                            for name in OBSERVATIONS if labels[name] is not sentence.expected[name]},
            })
    return {
        "num_sentences": len(sentences),
        "agreement": 1.0 - len(disagreements) / len(sentences) if sentences else 0.0,
        "per_observation": {name: sum(v) / len(v) for name, v in sorted(per_observation.items())},
        "disagreements": disagreements,
    }


def conformance() -> dict[str, object]:
    """Both agreement figures (see the module docstring)."""
    return {"phrase_templates": agreement(phrase_templates()), "trigger_sentences": agreement(trigger_sentences())}


def _markdown(result: dict[str, object]) -> str:
    lines = ["| sentence set | sentences | agreement (all 14 labels equal) |", "| --- | --- | --- |"]
    for name, part in result.items():
        assert isinstance(part, dict)
        lines.append(f"| {name.replace('_', ' ')} | {part['num_sentences']} | {part['agreement']:.3f} |")
    for name, part in result.items():
        assert isinstance(part, dict)
        lines += ["", f"Disagreements, {name.replace('_', ' ')}:", ""]
        lines += [f"- {d['text']!r}: " + ", ".join(f"{o} CheXpert {v['chexpert']} / ours {v['ours']}"
                                                    for o, v in d["differs"].items()) for d in part["disagreements"]]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m research.labeler.chexpert_conformance",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--output-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    result = conformance()
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "conformance.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    (args.output_dir / "conformance.md").write_text(_markdown(result), encoding="utf-8")
    for name, part in result.items():
        logger.info("%s: %d sentences, agreement %.3f", name, part["num_sentences"], part["agreement"])
    logger.info("wrote %s", args.output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "TemplateSentence",
    "agreement",
    "chexpert_expected",
    "chexpert_mentions",
    "chexpert_phrases",
    "conformance",
    "phrase_templates",
    "trigger_sentences",
]
