"""How closely the rule-based labeler follows the Stanford CheXpert labeler's own lists and rules.

Usage::

    python -m research.labeler.chexpert_conformance                      # writes research/results/labeler_conformance.json
    python -m research.labeler.chexpert_conformance --chexpert-labeler DIR   # also checks the tables against a checkout
    python -m research.labeler.chexpert_conformance --output-dir DIR         # DIR/conformance.json and conformance.md

``DIR`` is a checkout of https://github.com/stanfordmlgroup/chexpert-labeler (never committed here): with it the
study first checks that ``chexpert_phrases.json`` equals its ``phrases/mention`` and ``phrases/unmention`` files and
that :data:`research.labeler.chexpert_patterns.PATTERN_CASES` holds every rule line of its ``patterns/*.txt``
files, and records both checks in the results.

Four sentence sets are built from CheXpert's files, each with the labels CheXpert gives it:

* **phrase templates**: every mention phrase of ``phrases/mention`` in positive, negative and uncertain sentences
  (findings: ``"There is {p}."``, ``"No definite {p}."``, ``"{P} is not excluded."`` ...; heart and mediastinum
  phrases: ``"The {p} is enlarged."``, ``"The {p} is within normal limits."``, ``"The {p} is unchanged."`` ...);
* **rule sentences**: every rule line of the three ``patterns/*.txt`` files realised by one to eight sentences
  (:mod:`research.labeler.chexpert_patterns`), each around every word of a filler list (twelve findings, eight heart
  and mediastinum phrases, devices ...); the rule file gives the direction (pre-negation and post-negation
  uncertainty: uncertain; negation: negative) and a second mention in the sentence has its own stated label
  (``"{Y} rather than {x}."``: Y positive, X negative);
* **positive controls**: findings in sentences no rule reaches (``"No change in {x}."``, ``"Stable {x}."``);
* **reports**: three sentences of the sets above joined into one report (seeded), to check the aggregation over
  sentences and No Finding.

CheXpert's labels of a sentence: its mention extraction reproduced exactly (lowercased substring match of every
phrase, minus overlaps with an unmention phrase, the positional unmentions it derives for the heart and mediastinum
phrases included); every mention takes the label of the rule it is in the scope of; its post-negation rules make
"vascular congestion", "pulmonary congestion", "indistinctness" and "vascular prominence" uncertain unless negated;
the mentions are aggregated with the code of its ``stages/aggregate.py`` (a negative and an uncertain mention give
uncertain, before anything else; then positive > uncertain > negative; a positive or uncertain "chf" / "heart
failure" also makes Cardiomegaly uncertain; No Finding positive only when no mention other than a support device
is positive or uncertain, its list of other findings included). A sentence agrees when all 14 labels are equal.

Figures: the agreement of each set; **macro agreement**, the mean over the 14 observations of the agreement on the
single sentences built for that observation (all three single-sentence sets); **rule agreement**, the agreement on
the rule sentences (the negation / uncertainty triggers), also per rule line and per rule file.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from research.labeler.chexpert_held_out import HELD_OUT, SAMPLE_REPORTS
from research.labeler.chexpert_patterns import (
    FILLERS,
    PATTERN_CASES,
    POSITIVE_CONTROLS,
    RULE_FILES,
    PatternCase,
    normalise_pattern,
)
from xray_report.evaluation.chexpert_labeler import OBSERVATIONS, Label, label_report

logger = logging.getLogger(__name__)

PHRASES_FILE = Path(__file__).with_name("chexpert_phrases.json")
RESULTS_FILE = Path(__file__).resolve().parents[1] / "results" / "labeler_conformance.json"
NO_FINDING = "No Finding"
SUPPORT_DEVICES = "Support Devices"
SETS: tuple[str, ...] = ("phrase_templates", "rule_sentences", "positive_controls", "reports", "held_out",
                         "sample_reports")
REPORT_CASES = 400
REPORT_SEED = 0

Labeler = Callable[[str], Mapping[str, Label]]

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
    Label.POSITIVE: ("There is {p}.", "{P} is present.", "Small {p}.", "{P} is again seen."),
    Label.NEGATIVE: ("No {p}.", "There is no {p}.", "No evidence of {p}.", "Without {p}.", "No definite {p}.",
                     "{P} has resolved.", "Negative for {p}."),
    Label.UNCERTAIN: ("Possible {p}.", "{P} cannot be excluded.", "Suspicious for {p}.", "Findings may represent {p}.",
                      "{P} is not excluded.", "No new {p}.", "Cannot rule out {p}."),
}
ANATOMY_TEMPLATES: dict[Label, tuple[str, ...]] = {
    Label.POSITIVE: ("The {p} is enlarged.", "The {p} is mildly enlarged."),
    Label.NEGATIVE: ("The {p} is normal.", "The {p} is within normal limits.", "The {p} is unremarkable.",
                     "The {p} is not enlarged.", "The {p} appears normal.", "The {p} is at the upper limits of normal.",
                     "Normal {p}."),
    Label.UNCERTAIN: ("The {p} is stable.", "The {p} is unchanged.", "Stable {p}.", "The {p} is similar to prior.",
                      "No change in the {p}."),
}
# Mentions CheXpert's post-negation rules make uncertain unless a rule before them applied.
_ALWAYS_UNCERTAIN = ("vascular congestion", "pulmonary congestion", "indistinctness", "vascular prominence")


@dataclass(frozen=True)
class TemplateSentence:
    """One case of a conformance set with CheXpert's expected labels.

    Attributes:
        text: the sentence (or report).
        set_name: one of :data:`SETS`.
        observation: the observation the case was built for.
        phrase: the list phrase, or the rule line, it exercises.
        expected: CheXpert's labels for all 14 observations.
        rule_file: for rule sentences, the rule file of the rule.
        mentions: CheXpert's mentions with their labels, (observation, phrase, label), before aggregation.
    """

    text: str
    set_name: str
    observation: str
    phrase: str
    expected: dict[str, Label]
    rule_file: str = ""
    mentions: tuple[tuple[str, str, Label], ...] = ()


@dataclass(frozen=True)
class MentionSpan:
    """One mention CheXpert's extraction finds: observation, list phrase and character span."""

    observation: str
    phrase: str
    start: int
    end: int


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
    """A phrase as CheXpert matches it: a plain substring, spaces (``_`` in the lists) included."""
    return re.escape(phrase)


def chexpert_clean(sentence: str) -> str:
    """CheXpert's loader cleaning: lowercase, ``and/or`` -> ``or``, ``a/b`` -> ``a or b``, spaces after , and ."""
    text = re.sub(r"(?<=[a-z])/(?=[a-z])", " or ", sentence.lower().replace("and/or", "or"))
    text = text.replace("..", ".").replace(",", ", ").replace(".", ". ")
    return " ".join(text.split())


def chexpert_mention_spans(sentence: str) -> list[MentionSpan]:
    """Every mention CheXpert's extraction finds in ``sentence`` (already cleaned), with its span."""
    text = sentence
    found = []
    for observation, phrases in chexpert_phrases()["mention"].items():
        blocked = [m.span() for u in _unmentions().get(observation, ()) for m in re.finditer(re.escape(u), text)]
        for phrase in phrases:
            for match in re.finditer(_phrase_pattern(phrase), text):
                if not any(match.start() < end and start < match.end() for start, end in blocked):
                    found.append(MentionSpan(observation, phrase, match.start(), match.end()))
    return found


def chexpert_mentions(sentence: str) -> list[tuple[str, str]]:
    """(observation, phrase) of every mention CheXpert's extraction finds in ``sentence``."""
    return [(m.observation, m.phrase) for m in chexpert_mention_spans(chexpert_clean(sentence))]


def chexpert_aggregate(values: Sequence[Label]) -> Label:
    """CheXpert's ``Aggregator.dict_to_vec`` for one observation (its order of cases, kept as written)."""
    if not values:
        return Label.NOT_MENTIONED
    if len(values) == 1:
        return values[0]
    if Label.NEGATIVE in values and Label.UNCERTAIN in values:
        return Label.UNCERTAIN
    if Label.POSITIVE in values:
        return Label.POSITIVE
    return values[0]


def chexpert_labels(mentions: Iterable[tuple[str, str, Label]]) -> dict[str, Label]:
    """CheXpert's 14 labels from (observation, phrase, label) mentions, as ``stages/aggregate.py`` computes them."""
    per_observation: dict[str, list[Label]] = {}
    no_finding = True
    for observation, phrase, label in mentions:
        if label is Label.POSITIVE and phrase in _ALWAYS_UNCERTAIN:
            label = Label.UNCERTAIN
        if observation != SUPPORT_DEVICES and label in (Label.POSITIVE, Label.UNCERTAIN):
            no_finding = False
        if observation == NO_FINDING:
            continue
        if label in (Label.POSITIVE, Label.UNCERTAIN) and phrase in ("chf", "heart failure"):
            per_observation.setdefault("Cardiomegaly", []).append(Label.UNCERTAIN)
        per_observation.setdefault(observation, []).append(label)
    labels = {name: chexpert_aggregate(per_observation.get(name, ())) for name in OBSERVATIONS}
    labels[NO_FINDING] = Label.POSITIVE if no_finding else Label.NOT_MENTIONED
    return labels


def chexpert_expected(mentions: Iterable[tuple[str, str]], cue: Label) -> dict[str, Label]:
    """CheXpert's labels when every mention takes the label ``cue``."""
    return chexpert_labels((observation, phrase, cue) for observation, phrase in mentions)


def _capitalise(text: str) -> str:
    return text[0].upper() + text[1:] if text else text


@dataclass
class _Built:
    text: str
    mentions: list[tuple[str, str, Label]] = field(default_factory=list)
    x_observations: list[str] = field(default_factory=list)


class TemplateError(ValueError):
    """A sentence whose mentions are not all where the template says (a bug of the table, not of the labeler)."""


def build_sentence(template: str, x: str, x_label: Label, y: str = "", y_label: Label = Label.POSITIVE) -> _Built:
    """Fill ``template`` and give each CheXpert mention the label of the slot it falls in.

    Raises:
        TemplateError: a mention outside the ``{x}`` and ``{y}`` slots.
    """
    pieces = re.split(r"(\{[xXyY]\})", template)
    text, spans = "", {}
    for piece in pieces:
        if piece in ("{x}", "{X}", "{y}", "{Y}"):
            words = x if piece.lower() == "{x}" else y
            words = _capitalise(words) if piece[1].isupper() else words
            spans[piece.lower()] = (len(text), len(text) + len(words))
            text += words
        else:
            text += piece
    text = _capitalise(text)
    cleaned = chexpert_clean(text)
    if cleaned != " ".join(text.lower().split()):
        # cleaning changed offsets (and/or, a/b): locate the slot words again in the cleaned text
        spans = {slot: _find(cleaned, (x if slot == "{x}" else y).lower()) for slot in spans}
    built = _Built(text)
    for mention in chexpert_mention_spans(cleaned):
        slot = next((s for s, (a, b) in spans.items() if mention.start < b and a < mention.end), None)
        if slot is None:
            raise TemplateError(f"{text!r}: mention {mention.phrase!r} outside the slots")
        label = x_label if slot == "{x}" else y_label
        built.mentions.append((mention.observation, mention.phrase, label))
        if slot == "{x}":
            built.x_observations.append(mention.observation)
    return built


def _find(text: str, words: str) -> tuple[int, int]:
    start = text.find(words)
    return (start, start + len(words)) if start >= 0 else (0, 0)


def _main_observation(observations: Sequence[str]) -> str:
    """The observation a case counts for: the first one that is not an other finding of No Finding."""
    return next((o for o in observations if o != NO_FINDING), observations[0] if observations else "")


def phrase_templates() -> list[TemplateSentence]:
    """Every mention phrase of the CheXpert lists in positive, negative and uncertain sentences.

    A sentence in which CheXpert no longer finds the phrase's observation (e.g. ``"Normal heart."`` has no
    ``"the heart"``) is left out.
    """
    sentences = []
    for observation, phrases in chexpert_phrases()["mention"].items():
        for phrase in phrases:
            anatomy = phrase.strip() in _ANATOMY.get(observation, ())
            templates = ANATOMY_TEMPLATES if anatomy else FINDING_TEMPLATES
            words = _COMPLETIONS.get(phrase.strip(), phrase.strip()).removeprefix("the ")
            for polarity, forms in templates.items():
                for form in forms:
                    built = build_sentence(form.replace("{p}", "{x}").replace("{P}", "{X}"), words, polarity)
                    if observation not in built.x_observations:
                        continue
                    sentences.append(TemplateSentence(built.text, "phrase_templates", observation, phrase,
                                                      chexpert_labels(built.mentions), "", tuple(built.mentions)))
    return sentences


def rule_sentences(cases: Sequence[PatternCase] = PATTERN_CASES) -> list[TemplateSentence]:
    """Every realised rule line of CheXpert's pattern files around every word of its filler list."""
    sentences = []
    findings = FILLERS["finding"]
    for case in cases:
        direction = Label(case.direction)
        y_label = Label(case.y) if case.y else direction
        fillers = FILLERS[case.fillers]
        for template in case.templates:
            for index, words in enumerate(fillers):
                position = findings.index(words) + 1 if words in findings else index
                partner = findings[position % len(findings)]
                built = build_sentence(template, words, direction, partner, y_label)
                if not built.x_observations:
                    continue
                sentences.append(TemplateSentence(built.text, "rule_sentences", _main_observation(built.x_observations),
                                                  case.pattern, chexpert_labels(built.mentions), case.file,
                                                  tuple(built.mentions)))
    return sentences


def positive_controls() -> list[TemplateSentence]:
    """Findings in sentences that no CheXpert rule reaches: positive."""
    sentences = []
    for template in POSITIVE_CONTROLS:
        for words in FILLERS["finding"]:
            built = build_sentence(template, words, Label.POSITIVE)
            if built.x_observations:
                sentences.append(TemplateSentence(built.text, "positive_controls", _main_observation(built.x_observations),
                                                  template, chexpert_labels(built.mentions), "", tuple(built.mentions)))
    return sentences


def report_cases(pool: Sequence[TemplateSentence], count: int = REPORT_CASES, seed: int = REPORT_SEED,
                 ) -> list[TemplateSentence]:
    """``count`` reports of three sentences drawn from ``pool`` (seeded, no sentence twice in a report); CheXpert
    classifies each sentence's mentions alone and aggregates all of them."""
    rng = random.Random(seed)
    by_text = {sentence.text: sentence for sentence in pool}
    texts = sorted(by_text)
    reports = []
    for _ in range(count):
        chosen = [by_text[text] for text in rng.sample(texts, 3)]
        mentions = tuple(m for sentence in chosen for m in sentence.mentions)
        reports.append(TemplateSentence(" ".join(s.text for s in chosen), "reports", chosen[0].observation,
                                        " | ".join(s.phrase for s in chosen), chexpert_labels(mentions), "", mentions))
    return reports


def held_out() -> list[TemplateSentence]:
    """The held-out report sentences (:data:`research.labeler.chexpert_held_out.HELD_OUT`).

    Raises:
        TemplateError: CheXpert finds a mention of an observation the entry gives no value for, or none of one it
            gives a value for.
    """
    sentences = []
    for text, values in HELD_OUT:
        found = chexpert_mention_spans(chexpert_clean(text))
        observations = {m.observation for m in found}
        if observations != set(values):
            raise TemplateError(f"{text!r}: CheXpert mentions {sorted(observations)}, the entry gives {sorted(values)}")
        mentions, seen = [], {name: 0 for name in values}
        for mention in sorted(found, key=lambda m: m.start):
            value = values[mention.observation]
            if isinstance(value, tuple):  # one value per mention, in order
                value = value[min(seen[mention.observation], len(value) - 1)]
                seen[mention.observation] += 1
            mentions.append((mention.observation, mention.phrase, Label(value)))
        observation = _main_observation([m[0] for m in mentions]) if mentions else NO_FINDING
        sentences.append(TemplateSentence(text, "held_out", observation, text, chexpert_labels(mentions), "",
                                          tuple(mentions)))
    return sentences


def sample_reports() -> list[TemplateSentence]:
    """CheXpert's sample reports with the labels its own run recorded."""
    numeric = {1.0: Label.POSITIVE, 0.0: Label.NEGATIVE, -1.0: Label.UNCERTAIN}
    return [TemplateSentence(text, "sample_reports", "", text,
                             {name: numeric[values[name]] if name in values else Label.NOT_MENTIONED
                              for name in OBSERVATIONS})
            for text, values in SAMPLE_REPORTS]


def all_sets() -> dict[str, list[TemplateSentence]]:
    """The sentence sets of the study (see the module docstring)."""
    singles = {"phrase_templates": phrase_templates(), "rule_sentences": rule_sentences(),
               "positive_controls": positive_controls()}
    return {**singles, "reports": report_cases([s for sentences in singles.values() for s in sentences]),
            "held_out": held_out(), "sample_reports": sample_reports()}


def agreement(sentences: Sequence[TemplateSentence], labeler: Labeler = label_report, *,
              keep_disagreements: int = 1000) -> dict[str, object]:
    """Share of cases whose 14 labels all equal CheXpert's, per observation, per rule line, and the disagreements."""
    disagreements = []
    per_observation: dict[str, list[int]] = {}
    per_rule: dict[str, list[int]] = {}
    per_file: dict[str, list[int]] = {}
    for sentence in sentences:
        labels = _labels(labeler, sentence.text)
        agrees = all(labels[name] is sentence.expected[name] for name in OBSERVATIONS)
        per_observation.setdefault(sentence.observation, []).append(int(agrees))
        if sentence.rule_file:
            per_rule.setdefault(sentence.phrase, []).append(int(agrees))
            per_file.setdefault(sentence.rule_file, []).append(int(agrees))
        if not agrees:
            disagreements.append({
                "text": sentence.text,
                "phrase": sentence.phrase,
                "differs": {name: {"chexpert": sentence.expected[name].value, "ours": labels[name].value}
                            for name in OBSERVATIONS if labels[name] is not sentence.expected[name]},
            })
    result: dict[str, object] = {
        "num_sentences": len(sentences),
        "agreement": 1.0 - len(disagreements) / len(sentences) if sentences else 0.0,
        "per_observation": {name: _share(v) for name, v in sorted(per_observation.items())},
    }
    if per_rule:
        result["per_rule_file"] = {name: {"sentences": len(per_file[name]), "agreement": _share(per_file[name])}
                                   for name in RULE_FILES if name in per_file}
        result["per_rule"] = {rule: {"sentences": len(v), "agreement": _share(v)} for rule, v in per_rule.items()}
    result["num_disagreements"] = len(disagreements)
    result["disagreements"] = disagreements[:keep_disagreements]
    return result


def _labels(labeler: Labeler, text: str) -> dict[str, Label]:
    """The labeler's 14 labels as :class:`Label` (another labeler may use its own enum of the same values)."""
    labels = labeler(text)
    return {name: Label(getattr(labels[name], "value", labels[name])) for name in OBSERVATIONS}


def _share(values: Sequence[int]) -> float:
    return sum(values) / len(values) if values else 0.0


def macro_agreement(sentences: Sequence[TemplateSentence], labeler: Labeler = label_report) -> dict[str, object]:
    """Mean over the 14 observations of the agreement on the single sentences built for each."""
    per_observation: dict[str, list[int]] = {}
    for sentence in sentences:
        labels = _labels(labeler, sentence.text)
        per_observation.setdefault(sentence.observation, []).append(
            int(all(labels[name] is sentence.expected[name] for name in OBSERVATIONS)))
    shares = {name: _share(per_observation.get(name, [])) for name in OBSERVATIONS}
    return {"macro_agreement": sum(shares.values()) / len(shares), "per_observation": shares,
            "sentences_per_observation": {name: len(per_observation.get(name, [])) for name in OBSERVATIONS}}


def check_sources(chexpert_dir: Path) -> dict[str, object]:
    """Compare the committed phrase table and the rule table with a checkout of the CheXpert labeler.

    Returns:
        ``{"phrases_equal": bool, "phrase_differences": [...], "rules_in_files": int, "rules_missing": [...],
        "rules_not_in_files": [...]}``.
    """
    phrases = json.loads(PHRASES_FILE.read_text(encoding="utf-8"))
    differences = []
    for kind in ("mention", "unmention"):
        folder = chexpert_dir / "phrases" / kind
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: not a CheXpert labeler checkout")
        on_disk = {path.stem.replace("_", " ").title(): [line.strip() for line in path.read_text().splitlines() if line.strip()]
                   for path in sorted(folder.glob("*.txt"))}
        if on_disk != phrases[kind]:
            differences.append({"kind": kind, "files": on_disk, "table": phrases[kind]})
    table = {(case.file, normalise_pattern(case.pattern)) for case in PATTERN_CASES}
    in_files = []
    for name in RULE_FILES:
        path = chexpert_dir / "patterns" / f"{name}.txt"
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                in_files.append((name, normalise_pattern(line)))
    return {
        "phrases_equal": not differences,
        "phrase_differences": differences,
        "rules_in_files": len(in_files),
        "distinct_rules_in_files": len(set(in_files)),
        "rules_missing": sorted(f"{f}: {p}" for f, p in set(in_files) - table),
        "rules_not_in_files": sorted(f"{f}: {p}" for f, p in table - set(in_files)),
    }


def coverage() -> dict[str, object]:
    """How many rule lines have sentences, and the reasons given for those that have none."""
    realised = {(c.file, normalise_pattern(c.pattern)) for c in PATTERN_CASES if c.templates}
    unrealised = {(c.file, normalise_pattern(c.pattern)): c.note for c in PATTERN_CASES if not c.templates}
    return {"rules": len({(c.file, normalise_pattern(c.pattern)) for c in PATTERN_CASES}),
            "rules_with_sentences": len(realised),
            "rules_without_sentences": [{"file": f, "rule": p, "why": note} for (f, p), note in unrealised.items()]}


def conformance(labeler: Labeler = label_report, chexpert_dir: Path | None = None) -> dict[str, object]:
    """Every figure of the study (see the module docstring)."""
    sets = all_sets()
    singles = [s for name in ("phrase_templates", "rule_sentences", "positive_controls") for s in sets[name]]
    macro = macro_agreement(singles, labeler)
    parts = {name: agreement(sentences, labeler) for name, sentences in sets.items()}
    return {
        "summary": {
            "macro_agreement": macro["macro_agreement"],
            "rule_agreement": parts["rule_sentences"]["agreement"],
            "rule_sentences": parts["rule_sentences"]["num_sentences"],
            "single_sentences": len(singles),
            **{f"{name}_agreement": part["agreement"] for name, part in parts.items()},
        },
        "macro": macro,
        "coverage": coverage(),
        "source_check": check_sources(chexpert_dir) if chexpert_dir else None,
        **parts,
    }


def _markdown(result: Mapping[str, object]) -> str:
    summary = result["summary"]
    assert isinstance(summary, dict)
    lines = [f"macro agreement (14 observations): {summary['macro_agreement']:.3f}; "
             f"rule agreement: {summary['rule_agreement']:.3f} of {summary['rule_sentences']} rule sentences", "",
             "| sentence set | sentences | agreement (all 14 labels equal) |", "| --- | ---: | ---: |"]
    for name in SETS:
        part = result[name]
        assert isinstance(part, dict)
        lines.append(f"| {name.replace('_', ' ')} | {part['num_sentences']} | {part['agreement']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m research.labeler.chexpert_conformance",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=RESULTS_FILE,
                        help="results file (default: research/results/labeler_conformance.json)")
    parser.add_argument("--output-dir", type=Path,
                        help="instead of --output: write conformance.json and conformance.md to this folder")
    parser.add_argument("--chexpert-labeler", type=Path,
                        help="a checkout of stanfordmlgroup/chexpert-labeler: check the phrase and rule tables against it")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    result = conformance(chexpert_dir=args.chexpert_labeler)
    source = result["source_check"]
    if isinstance(source, dict) and (not source["phrases_equal"] or source["rules_missing"]):
        logger.error("the tables differ from %s: %s", args.chexpert_labeler,
                     {k: source[k] for k in ("phrases_equal", "rules_missing", "rules_not_in_files")})
        return 1
    output = args.output_dir / "conformance.json" if args.output_dir else args.output
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    if args.output_dir:
        (args.output_dir / "conformance.md").write_text(_markdown(result), encoding="utf-8")
    print(_markdown(result))
    logger.info("wrote %s", output)
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "SETS",
    "TemplateError",
    "TemplateSentence",
    "agreement",
    "all_sets",
    "build_sentence",
    "check_sources",
    "chexpert_aggregate",
    "chexpert_clean",
    "chexpert_expected",
    "chexpert_labels",
    "chexpert_mention_spans",
    "chexpert_mentions",
    "chexpert_phrases",
    "conformance",
    "coverage",
    "macro_agreement",
    "phrase_templates",
    "positive_controls",
    "report_cases",
    "rule_sentences",
]
