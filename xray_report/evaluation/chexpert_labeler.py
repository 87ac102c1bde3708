"""A rule-based labeler of the 14 CheXpert observations in free-text chest X-ray reports.

Each observation gets one of four values (:class:`Label`): positive, negative, uncertain or not mentioned.

How a report is labelled:

1. The text is lowercased and split into sentences (at ``.``/``!``/``?`` not followed by a digit, at line
   breaks and at list numbers such as ``"2. "``). Each sentence is cut into clauses at scope breakers such as
   ``;``, ``but``, ``however``, ``although``, ``except``, ``other than``, ``which``.
2. In each sentence every *mention* of an observation is found with the observation's patterns
   (:data:`OBSERVATION_RULES`; e.g. ``"effusion"`` for Pleural Effusion, ``"heart ... enlarged"`` for
   Cardiomegaly), skipping look-alikes listed as exclusions (``"pericardial effusion"``, ``"mass effect"``,
   ``"bony lesion"`` ...).
3. A mention's value comes from the cues of its clause:

   * an uncertainty cue right after it (``"pneumonia cannot be excluded"``, ``"effusion is suspected"``,
     ``"atelectasis versus pneumonia"``) makes it **uncertain**;
   * otherwise the nearest cue before it (or inside a multi-word mention such as ``"heart is not enlarged"``)
     decides: a negation cue (``no``, ``without``, ``negative for``, ``free of``, ``resolution of``,
     ``no evidence of``, ``no findings to suggest`` ...) gives **negative**, an uncertainty cue (``possible``,
     ``probable``, ``may``, ``could represent``, ``suspicious for``, ``cannot exclude``, ``borderline`` ...)
     gives **uncertain**, a pseudo-negation (``"no change in"``, ``"no increase in"``) blocks negation;
     negation reaches across a list (``"no effusion, pneumothorax or consolidation"``) up to the end of the clause;
   * otherwise a negation cue right after it (``"pneumothorax is not seen"``, ``"effusion has resolved"``)
     gives **negative**; a mention joined to another by ``or`` / ``and/or`` is **uncertain** (as in
     CheXpert); with no cue it is **positive**.

   Observations that radiologists report as a normal statement also have *normal phrases* that give
   **negative** directly: ``"heart size is normal"``, ``"normal cardiac silhouette"``, ``"mediastinal contours
   within normal limits"``, ``"heart size is at the upper limits of normal"`` (Cardiomegaly, Enlarged
   Cardiomediastinum). Borderline statements (``"borderline heart size"``, ``"mediastinum is mildly prominent"``)
   and, as in CheXpert, stable ones (``"heart size is stable"``, ``"unchanged mediastinal contour"``) give
   **uncertain**; *hedged mentions* (``"vascular congestion"``, ``"indistinctness"``) are uncertain unless negated.
4. The mentions of a report are aggregated per observation: positive if any mention is positive, else
   uncertain if any is uncertain, else negative if any is negative, else not mentioned. A positive or uncertain
   ``"CHF"`` / ``"heart failure"`` also makes Cardiomegaly uncertain.
5. **No Finding** is derived, as in CheXpert: positive when none of the 12 pathology observations (all but
   No Finding and Support Devices) and none of the *other findings* (:data:`OTHER_FINDING_RULE`: emphysema,
   calcified granuloma, degenerative change, scoliosis ...) is positive or uncertain, and not mentioned otherwise
   (it is never negative or uncertain). Support devices do not affect it.

The mention lists and cues follow the Stanford CheXpert labeler's (the project's conformance study,
``research/labeler/chexpert_conformance.py``, measures the agreement); the rules were checked on the phrasing of
the IU X-ray reports (``"XXXX"`` is the collection's de-identification mask and is treated as an unknown word).
docs/evaluation.md lists the deliberate differences and the agreement with the studies' MeSH tags.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Optional


class Label(str, Enum):
    """Value of one observation in one report."""

    POSITIVE = "positive"
    NEGATIVE = "negative"
    UNCERTAIN = "uncertain"
    NOT_MENTIONED = "not_mentioned"


CHEXPERT_NUMERIC: dict[Label, Optional[float]] = {
    Label.POSITIVE: 1.0,
    Label.NEGATIVE: 0.0,
    Label.UNCERTAIN: -1.0,
    Label.NOT_MENTIONED: None,
}
"""The CheXpert CSV convention for the four values (1, 0, -1, blank)."""

OBSERVATIONS: tuple[str, ...] = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Lesion",
    "Lung Opacity",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
"""The 14 CheXpert observations, in the CheXpert column order."""

PATHOLOGIES: tuple[str, ...] = tuple(o for o in OBSERVATIONS if o not in ("No Finding", "Support Devices"))
"""The 12 observations whose presence rules out No Finding."""

_PRIORITY = {Label.POSITIVE: 3, Label.UNCERTAIN: 2, Label.NEGATIVE: 1, Label.NOT_MENTIONED: 0}


@dataclass(frozen=True)
class ObservationRule:
    """Patterns of one observation (regular expressions applied to lowercased text).

    Attributes:
        name: the CheXpert observation.
        mentions: patterns whose match is a mention of the finding (its value decided by the cues around it).
        exclusions: patterns of look-alike phrases; a mention inside one of their matches is ignored.
        normal_phrases: patterns stating the structure is normal (value negative without cue analysis).
        borderline_phrases: patterns stating the finding is borderline (value uncertain).
        stable_phrases: patterns stating the structure is stable or unchanged (value uncertain, as in CheXpert),
            unless a normal phrase covers the same words ("heart size is normal and stable" is negative).
        hedged_mentions: mentions that are uncertain when nothing negates them (CheXpert's "vascular
            congestion", "indistinctness" ...).
    """

    name: str
    mentions: tuple[str, ...]
    exclusions: tuple[str, ...] = ()
    normal_phrases: tuple[str, ...] = ()
    borderline_phrases: tuple[str, ...] = ()
    stable_phrases: tuple[str, ...] = ()
    hedged_mentions: tuple[str, ...] = ()


_W = r"(?:[\w-]+,? ){0,4}?"  # up to four words between a subject and its descriptor
_HEART = r"\b(?:heart|cardiac (?:silhouette|shadow|contours?|size|borders?)|heart size|cardiac)"
_MEDIASTINUM = (
    r"\b(?:cardio ?mediastinal (?:silhouette|contours?|shadow|size|width)s?|cardiomediastinum|mediastinum"
    r"|mediastinal (?:silhouette|contours?|shadow|width|structures|configuration)s?|pericardial silhouette"
    r"|cardiac silhouette and vascularity|contours?)"
)
_ENLARGED = r"(?:enlarged|enlargement|large|increased in size|prominent|prominence|widened|widening)"
_NORMAL = r"(?:normal|within (?:\w+ )?(?:normal )?limits(?: of normal)?|unremarkable|wnl)"
_STABLE = r"(?:stable|unchanged|not changed|similar (?:to|in appearance to) (?:the )?prior)"
_BORDERLINE = r"(?:borderline|mildly prominent|slightly prominent)"
_UPPER_NORMAL = r"(?:near |at |on )?(?:the )?(?:upper|high|top)[- ](?:limits? of |end of )?normal"
_LINK = r"(?:(?:is|are|appears?|remains?|stable|and|in|the|of|size|now|again|at|near|mildly|slightly)[ ,]+){0,5}"

OBSERVATION_RULES: tuple[ObservationRule, ...] = (
    ObservationRule(
        name="Enlarged Cardiomediastinum",
        mentions=(
            rf"{_MEDIASTINUM} {_W}(?:enlarged|enlargement|widened|widening|prominent|prominence)",
            r"(?:enlarged|widened|widening of the|prominent|enlargement of the) (?:superior )?(?:cardio ?)?mediastin\w*",
            r"mediastinal (?:widening|enlargement|prominence)",
        ),
        normal_phrases=(
            rf"{_MEDIASTINUM} {_W}{_NORMAL}",
            rf"{_MEDIASTINUM} {_LINK}{_UPPER_NORMAL}",
            rf"(?:heart|cardiac silhouette|heart size) and (?:the )?(?:cardio)?mediastin\w+(?: \w+)? {_W}{_NORMAL}",
            r"normal (?:appearing |appearance of the )?(?:cardio ?)?mediastin\w*",
            r"(?:cardio ?)?mediastin\w+ (?:\w+ )?(?:is |are )?(?:not enlarged|not widened)",
        ),
        borderline_phrases=(rf"{_MEDIASTINUM} {_LINK}{_BORDERLINE}",),
        stable_phrases=(rf"{_MEDIASTINUM} {_LINK}{_STABLE}", rf"{_STABLE} (?:\w+ )?{_MEDIASTINUM}"),
    ),
    ObservationRule(
        name="Cardiomegaly",
        mentions=(
            r"cardiomegaly",
            r"cardiac (?:enlargement|hypertrophy)",
            r"(?:enlarged|enlargement of the|large) (?:heart|cardiac (?:silhouette|shadow|size|contour))",
            rf"{_HEART} {_W}{_ENLARGED}",
            r"cardio ?mediastinal (?:silhouette|contours?|shadow) (?:\w+ ){0,3}?(?:enlarged|enlargement)",
        ),
        normal_phrases=(
            rf"{_HEART} {_W}{_NORMAL}",
            rf"{_HEART} {_LINK}{_UPPER_NORMAL}",
            r"normal (?:\w+ )?(?:heart|cardiac|cardio ?mediastinal)",
            r"cardio ?mediastinal (?:silhouette|contours?|shadow) (?:\w+ ){0,3}?(?:normal|within normal limits)",
            r"(?:heart|cardiac \w+) (?:is |are )?not enlarged",
        ),
        borderline_phrases=(
            rf"{_HEART} {_LINK}{_BORDERLINE}",
            rf"{_BORDERLINE} (?:\w+ )?(?:heart|cardiac|cardiomegaly|enlarge)",
        ),
        stable_phrases=(rf"{_HEART} {_LINK}{_STABLE}", rf"{_STABLE} (?:\w+ )?{_HEART}"),
    ),
    ObservationRule(
        name="Lung Lesion",
        mentions=(
            r"nodul\w*",
            r"\bmass(?:es|like)?\b",
            r"\blesions?\b",
            r"\btumou?rs?\b",
            r"neoplas\w*",
            r"carcinoma|malignan\w*|cancer",
            r"cavitary|cavitation|cavity",
            r"\blumps?\b",
        ),
        exclusions=(
            r"mass effect",
            r"calcified (?:\w+ )?nodul\w*",
            r"(?:bony|bone|lytic|sclerotic|blastic|osseous|skeletal|expansile|rib|osteolytic) (?:\w+ )?lesions?",
            r"lesions? (?:of|in) the (?:\w+ )?(?:rib|bone|spine|vertebra\w*|humerus|clavicle)",
            r"(?:soft tissue|breast) (?:\w+ )?(?:mass|nodul\w*|lesion)",
            r"osseous metasta\w*|(?:bone|bony|skeletal) metasta\w*",
            r"nipple",
        ),
    ),
    ObservationRule(
        name="Lung Opacity",
        mentions=(
            r"opaci(?:ty|ties|fication|fied)",
            r"infiltrat\w*",
            r"increased (?:\w+ )?densit(?:y|ies)\b",
            r"decreased (?:\w+ )?translucency",
            r"air[- ]?space (?:disease|process|opacit\w*|consolidation)",
            r"\bhaz(?:y|iness)\b",
            r"ground[- ]glass",
            r"interstitial (?:\w+ )?(?:markings?|pattern|lung)",
            r"reticular (?:\w+ )?(?:pattern|markings?)|reticulation",
            r"(?:parenchymal|pulmonary|lung) (?:\w+ )?scarring|\bscar(?:s|ring|red)?\b",
            r"(?:peribronchial|bronchial|airway|bronchial wall|wall) thickening",
        ),
        exclusions=(
            r"(?:bone|bony|osseous|soft tissue|breast|nipple|calcific|calcified|metallic) densit\w*",
            r"densit\w* (?:of|in|over|projecting over) the (?:\w+ )?(?:rib|spine|breast|soft tissue)",
            r"(?:increased )?(?:bone )?mineral densit\w*|osteopeni\w*",
            r"pleural scar\w*",
        ),
    ),
    ObservationRule(
        name="Edema",
        mentions=(
            r"\bedema\b",
            r"congestive heart failure|heart failure|\bchf\b",
            r"kerley",
        ),
        exclusions=(r"(?:soft tissue|subcutaneous|extremity|wall) edema",),
        hedged_mentions=(
            r"(?:pulmonary|vascular|venous|interstitial) (?:vascular )?(?:congestion|engorgement)|\bcongestion\b",
            r"\bindistinct(?:ness)?\b",
            r"vascular (?:\w+ )?prominence|prominen\w* (?:of the )?(?:pulmonary )?vascular\w*",
        ),
    ),
    ObservationRule(name="Consolidation", mentions=(r"consolidat\w*",)),
    ObservationRule(
        name="Pneumonia",
        mentions=(r"pneumoni\w*", r"bronchopneumonia", r"\binfection\b", r"infectious"),
        exclusions=(r"granulomatous (?:\w+ )?(?:infection|disease|process)", r"(?:prior|old|remote|healed) (?:\w+ )?infection"),
    ),
    ObservationRule(
        name="Atelectasis",
        mentions=(r"atelecta\w*", r"\bcollaps\w*"),
    ),
    ObservationRule(
        name="Pneumothorax",
        mentions=(r"pneumothora\w*", r"hydropneumothora\w*", r"hemopneumothora\w*"),
    ),
    ObservationRule(
        name="Pleural Effusion",
        mentions=(
            r"effusions?",
            r"pleural fluid",
            r"hydrothorax|hemothorax|hydropneumothora\w*",
            r"blunt(?:ing|ed) (?:of )?(?:the )?(?:\w+ ){0,2}?(?:costophrenic|cp|costodiaphragmatic) (?:angles?|sulc\w+|recess\w*|xxxx)",
            r"(?:costophrenic|cp) (?:angles?|sulc\w+|xxxx) (?:\w+ ){0,3}?blunt\w*",
            r"layering fluid",
        ),
        exclusions=(r"pericardial (?:\w+ )?effusions?", r"joint effusions?"),
    ),
    ObservationRule(
        name="Pleural Other",
        mentions=(
            r"pleural (?:\w+ )?(?:thickening|scar\w*|plaques?|calcifications?|fibrosis|reaction)",
            r"thickening of the (?:\w+ )?pleura",
            r"pleural[- ]?parenchymal (?:scar\w*|thickening|opacit\w*)",
            r"pleuro-?parenchymal (?:scar\w*|thickening|opacit\w*)",
            r"fibrothorax",
            r"apical (?:pleural )?(?:cap|capping)",
            r"\bfibros\w*|\bfibrotic\b",
            r"pleuro-?pericardial (?:scar\w*|thickening)",
        ),
    ),
    ObservationRule(name="Fracture", mentions=(r"fractur\w*", r"\bfx\b")),
    ObservationRule(
        name="Support Devices",
        mentions=(
            r"pacemaker|\bpacer\b|defibrillator|\bicd\b|\baicd\b|(?:cardiac|pacing|pacer) (?:\w+ )?(?:generator|leads?|device)",
            r"catheters?|\bpicc\b|\bport\b|port-a-cath|portacath|mediport|\blines?\b",
            r"\btubes?\b|\bcannula\b|\bcoils?\b|\bapparatus\b|\bequipment\b|\bmarkers?\b|arthroplast\w*",
            r"\bdrains?\b|\bshunt\b|\bsupport(?:ing)? (?:devices?|lines?|tubes?|apparatus)",
            r"surgical (?:\w+ )?clips?|\bclips\b|sutures?|suture material|staples",
            r"\bstents?\b",
            r"\bvalves?\b|valvular (?:replacement|prosthesis)",
            r"sternotomy wires?|sternal wires?|(?:orthopedic |surgical |fixation |spinal )?hardware|\bscrews?\b|\bplates?\b",
            r"stimulator|medical device|electronic device|monitor(?:ing)? leads|\bdevice\b",
            r"cabg markers?|surgical markers?",
            r"(?:\bxxxx|catheter|line|tube|port) tips?\b|\btips? (?:[\w-]+ ){0,5}?(?:svc|atri\w+|cavoatrial|cava|brachiocephalic|carina)",
        ),
        exclusions=(
            r"port of entry",
            r"(?:kerley|septal|pleural|fissural|skin|air-fluid|fluid) (?:\w+ )?lines?",
            r"valves? (?:\w+ )?calcifi\w*|calcifi\w* (?:of the )?(?:\w+ )?valves?",
        ),
    ),
)

OTHER_FINDING = "Other Finding"
"""Findings outside the 14 observations that still rule out No Finding (the other-finding list of CheXpert)."""

OTHER_FINDING_RULE = ObservationRule(
    name=OTHER_FINDING,
    mentions=tuple(
        rf"\b{stem}"
        for stem in (
            "emphysema", "blunt", "densit", "elevation", "eventration", "scoliosis", "degenera", "calcifi",
            "hyperinflat", "bronchospasm", "asthma", "hernia", "copd", "interstitial markings", "plaque",
            "osteophyt", "aortic disease", "bronchiolitis", "airways? disease", "thickening", "cephalization",
            "aspiration", "bullae", "contusion", "atherosclero", "osteopeni", "metasta", "granuloma",
            "pneumomediastinum", "pneumoperitoneum", "osteodystrophy", "cuffing", "irregular lucency", "inflam",
            "fissure", "hypertension", "prominen", "kyphosis", "defib", "hyperexpan", "bullet", "reticula",
            "thoracentesis", "bronchitis", "volume loss", "deformit", "hemorrhage", "hematoma", "radiopaque",
            "aerophagia", "arthropathy", "tracheostomy",
        )
    ),
)

# --- cues --------------------------------------------------------------------------------------------------------
# Each cue is (kind, pattern); kinds: "neg", "unc", "pseudo" (blocks negation). Longer cues are listed first and
# mask the shorter cues they contain ("cannot be excluded" hides "not", "no findings to suggest" hides "suggest").
_PRE_CUES: tuple[tuple[str, str], ...] = (
    ("pseudo", r"\bno (?:\w+ )?(?:change|increase|decrease|worsening|improvement) (?:in|of)\b"),
    ("pseudo", r"\bwithout (?:\w+ )?change\b|\bnot only\b"),
    ("unc", r"\bno (?:evidence|signs?|findings?) to (?:rule out|exclude)\b"),
    ("neg", r"\bno (?:[\w-]+ ){0,6}?(?:to suggest|suggestive of|suggesting|suspicious for|concerning for|worrisome for|to indicate|indicative of|diagnostic of)\b"),
    ("neg", r"\bno (?:obvious |definite )?associated\b"),
    ("unc", r"\bno (?:new|definite|obvious)\b"),
    ("neg", r"\b(?:no|without) (?:radiographic |definite |convincing |acute |xxxx )?(?:evidence|signs?|findings?) (?:of|for)\b"),
    ("unc", r"\b(?:cannot|can not|can't|could not|not) (?:be )?(?:entirely |completely |definitely |totally )?(?:exclude[ds]?|rule[ds]? out|ruled out)\b"),
    ("unc", r"\bdifficult to (?:exclude|rule out)\b|\bnot (?:entirely |completely )?excluded\b"),
    ("neg", r"\bno\b|\bnot\b|\bwithout\b|\bnegative for\b|\bfree of\b|\bclear of\b|\babsence of\b|\babsent\b"),
    ("neg", r"\bresolution of\b|\bresolved\b|\bnone\b|\bneither\b|\bnor\b|\bremoval of\b|\bremoved\b|\bfails? to (?:show|demonstrate)\b"),
    ("neg", r"\bhistory of\b|\brule out\b|\bdisappearance of\b|\bcleared\b"),
    ("unc", r"\bmaybe\b|\bsecondary to\b|\bcorrelat\w* clinically for\b|\bclinical correlation for\b"),
    ("unc", r"\bpossibl[ey]\b|\bprobabl[ey]\b|\blikely\b|\bunlikely\b|\bmay\b|\bmight\b|\bcould\b|\bperhaps\b"),
    ("unc", r"\bsuspect\w*|\bsuspicious for\b|\bsuspicion (?:of|for)\b|\bconcern\w* (?:for|of)\b|\bworrisome for\b"),
    ("unc", r"\bquestionabl[ey]\b|\bquestion(?: of)?\b|\bequivocal\b|\bsuggest\w*|\bdifferential\b|\bconsider\w*"),
    ("unc", r"\bversus\b|\bvs\b|\bborderline\b|\bindeterminate\b|\bpresum\w*|\bcannot\b|\bapparent\b|\bpotential\w*"),
)
_POST_UNC = re.compile(
    r"^\W*(?:[\w-]+,? ){0,5}?(?:(?:cannot|can not|can't|could not|not) (?:be )?(?:entirely |completely |definitely )?"
    r"(?:excluded|ruled out)|(?:is |are )?(?:poorly|incompletely|not well) (?:evaluated|visualized|seen|assessed)|(?:is |are )?(?:suspected|questioned)\b|(?:is|are) (?:not excluded|possible|possibly present|questionable|"
    r"likely|probable|a consideration)|(?:may|might|could) (?:also )?be (?:present|seen)|versus|vs\b)"
)
_POST_NEG = re.compile(
    r"^\W*(?:[\w-]+,? ){0,5}?(?:(?:is|are|was|were|has been|have been)? ?(?:not|no longer) (?:\w+ )?(?:seen|identified|"
    r"present|visualized|appreciated|demonstrated|evident|noted|detected|visible|apparent)|(?:has|have) (?:\w+ )?"
    r"(?:resolved|cleared)|(?:is|are) (?:absent|resolved)|resolved|(?:appears?|is|are|remains?) (?:\w+ )?(?:normal|"
    r"within (?:\w+ )?(?:normal )?limits(?: of normal)?))"
)
_CLAUSE_BREAK = re.compile(
    r";|\bbut\b|\bhowever\b|\balthough\b|\bthough\b|\bexcept\b|\bother than\b|\baside from\b|\bapart from\b"
    r"|\bwhereas\b|\bwhile\b|\bwhich\b|\bwith the exception of\b|\bbesides\b|\bbeyond\b"
    r"|,? and there (?:is|are|has been|have been)\b|, there (?:is|are)\b|\bthere is\b|\bthere are\b"
)
_OR_AFTER = re.compile(r"^\W*(?:[\w-]+ ){0,2}?(?:and/or|or)\b")
_OR_BEFORE = re.compile(r"\b(?:and/or|or)\W+(?:[\w-]+ ){0,3}?$")
_LIST_NUMBER_ONLY = re.compile(r"\d{1,2}[.)]?")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])(?!\d)\s*|\n+|(?:^|\s)\d{1,2}[.)]\s")


@dataclass(frozen=True)
class Mention:
    """One mention found in a report (useful to see why a report got a label).

    Attributes:
        observation: the CheXpert observation.
        label: the value of this mention.
        sentence: the sentence it was found in.
        text: the matched text.
        cue: the cue that decided the value (``""`` when none).
    """

    observation: str
    label: Label
    sentence: str
    text: str
    cue: str = ""


@dataclass
class LabelerResult:
    """Labels of one report with the mentions that produced them."""

    labels: dict[str, Label]
    mentions: list[Mention] = field(default_factory=list)


def _compile(patterns: Iterable[str]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in patterns)


@dataclass(frozen=True)
class _CompiledRule:
    name: str
    mentions: tuple[re.Pattern[str], ...]
    exclusions: tuple[re.Pattern[str], ...]
    normal_phrases: tuple[re.Pattern[str], ...]
    borderline_phrases: tuple[re.Pattern[str], ...]
    stable_phrases: tuple[re.Pattern[str], ...]
    hedged_mentions: tuple[re.Pattern[str], ...]


def _compile_rule(rule: ObservationRule) -> _CompiledRule:
    return _CompiledRule(
        rule.name, _compile(rule.mentions), _compile(rule.exclusions), _compile(rule.normal_phrases),
        _compile(rule.borderline_phrases), _compile(rule.stable_phrases), _compile(rule.hedged_mentions),
    )


_RULES = tuple(_compile_rule(rule) for rule in (*OBSERVATION_RULES, OTHER_FINDING_RULE))
_CUES = tuple((kind, re.compile(pattern)) for kind, pattern in _PRE_CUES)
_ABNORMAL_IN_GAP = re.compile(r"enlarg|\blarge|prominen|increas|widen|borderline|abnormal|not normal")


def split_report_sentences(report: str) -> list[str]:
    """Lowercase ``report`` and split it into sentences (see the module docstring)."""
    text = re.sub(r"\s+", " ", report.lower())
    parts = (part.strip(" .") for part in _SENTENCE_SPLIT.split(text) if part)
    return [part for part in parts if part and not _LIST_NUMBER_ONLY.fullmatch(part)]


def _clause_bounds(sentence: str, start: int, end: int) -> tuple[int, int]:
    """The span of the clause of ``sentence`` that contains the mention ``[start, end)``."""
    left, right = 0, len(sentence)
    for match in _CLAUSE_BREAK.finditer(sentence):
        if match.end() <= start:
            left = match.end()
        elif match.start() >= end:
            right = match.start()
            break
    return left, right


def _find_cues(text: str) -> list[tuple[int, int, str, str]]:
    """All cues of ``text`` as (start, end, kind, text); longer cues mask the shorter ones they contain."""
    taken = [False] * len(text)
    cues = []
    for kind, pattern in _CUES:
        for match in pattern.finditer(text):
            if any(taken[match.start() : match.end()]):
                continue
            for i in range(match.start(), match.end()):
                taken[i] = True
            cues.append((match.start(), match.end(), kind, match.group(0)))
    return sorted(cues)


def _mention_label(sentence: str, start: int, end: int) -> tuple[Label, str]:
    """Decide the value of the mention ``sentence[start:end]`` from the cues of its clause."""
    left, right = _clause_bounds(sentence, start, end)
    after = sentence[end:right]
    post_unc = _POST_UNC.search(after)
    if post_unc:
        return Label.UNCERTAIN, post_unc.group(0).strip()
    before = [cue for cue in _find_cues(sentence[left:end]) if cue[0] + left < end]
    if before:
        _, _, kind, text = max(before, key=lambda cue: (cue[1], cue[2] == "neg"))
        if kind == "neg":
            return Label.NEGATIVE, text
        if kind == "unc":
            return Label.UNCERTAIN, text
    post_neg = _POST_NEG.search(after)
    if post_neg:
        return Label.NEGATIVE, post_neg.group(0).strip()
    alternative = _OR_AFTER.search(after) or _OR_BEFORE.search(sentence[left:start])
    if alternative:  # "X or Y" hedges both unless a negation covers the list
        return Label.UNCERTAIN, alternative.group(0).strip()
    return Label.POSITIVE, ""


def _excluded_spans(rule: _CompiledRule, sentence: str) -> list[tuple[int, int]]:
    return [m.span() for pattern in rule.exclusions for m in pattern.finditer(sentence)]


def _sentence_mentions(rule: _CompiledRule, sentence: str) -> list[Mention]:
    """All mentions of one observation in one sentence, with their values."""
    found: list[Mention] = []
    covered: list[tuple[int, int]] = []
    for pattern in rule.borderline_phrases:
        for m in pattern.finditer(sentence):
            covered.append(m.span())
            found.append(Mention(rule.name, Label.UNCERTAIN, sentence, m.group(0), "borderline"))
    for pattern in rule.normal_phrases:
        for m in pattern.finditer(sentence):
            if _ABNORMAL_IN_GAP.search(m.group(0)) or _overlaps(m.span(), covered):
                continue
            covered.append(m.span())
            found.append(Mention(rule.name, Label.NEGATIVE, sentence, m.group(0), "normal statement"))
    for pattern in rule.stable_phrases:
        for m in pattern.finditer(sentence):
            if _ABNORMAL_IN_GAP.search(m.group(0)) or _overlaps(m.span(), covered):
                continue
            covered.append(m.span())
            found.append(Mention(rule.name, Label.UNCERTAIN, sentence, m.group(0), "stable statement"))
    excluded = _excluded_spans(rule, sentence)
    for hedged, patterns in ((False, rule.mentions), (True, rule.hedged_mentions)):
        for pattern in patterns:
            for m in pattern.finditer(sentence):
                if _overlaps(m.span(), excluded) or _overlaps(m.span(), covered):
                    continue
                covered.append(m.span())
                label, cue = _mention_label(sentence, m.start(), m.end())
                if hedged and label is Label.POSITIVE:
                    label, cue = Label.UNCERTAIN, "hedged mention"
                found.append(Mention(rule.name, label, sentence, m.group(0), cue))
    return found


def _overlaps(span: tuple[int, int], spans: Sequence[tuple[int, int]]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in spans)


def aggregate(labels: Iterable[Label]) -> Label:
    """Combine mention values: positive > uncertain > negative > not mentioned."""
    return max(labels, key=_PRIORITY.__getitem__, default=Label.NOT_MENTIONED)


def label_report_with_mentions(report: str) -> LabelerResult:
    """Label one report and return the mentions behind each label."""
    mentions: list[Mention] = []
    for sentence in split_report_sentences(report):
        for rule in _RULES:
            mentions.extend(_sentence_mentions(rule, sentence))
    mentions.extend(
        Mention("Cardiomegaly", Label.UNCERTAIN, m.sentence, m.text, "heart failure")
        for m in list(mentions)
        if m.observation == "Edema" and m.label in _FINDING_LABELS and _HEART_FAILURE.search(m.text)
    )
    labels = {name: aggregate(m.label for m in mentions if m.observation == name) for name in OBSERVATIONS}
    other = aggregate(m.label for m in mentions if m.observation == OTHER_FINDING)
    labels["No Finding"] = _no_finding(labels, other)
    return LabelerResult(labels=labels, mentions=mentions)


_FINDING_LABELS = (Label.POSITIVE, Label.UNCERTAIN)
_HEART_FAILURE = re.compile(r"heart failure|\bchf\b")


def _no_finding(labels: dict[str, Label], other_findings: Label) -> Label:
    """CheXpert's rule: positive unless a pathology or an other finding is positive or uncertain."""
    blocked = other_findings in _FINDING_LABELS or any(labels[p] in _FINDING_LABELS for p in PATHOLOGIES)
    return Label.NOT_MENTIONED if blocked else Label.POSITIVE


def label_report(report: str) -> dict[str, Label]:
    """Label one report: observation name -> :class:`Label`, for all 14 :data:`OBSERVATIONS`."""
    return label_report_with_mentions(report).labels


@functools.lru_cache(maxsize=64)
def _compiled(rule: ObservationRule) -> _CompiledRule:
    return _compile_rule(rule)


def label_with_rules(report: str, rules: Iterable[ObservationRule]) -> dict[str, Label]:
    """Label one report for observations outside the 14, defined by `rules`, with the same mention and cue
    analysis as :func:`label_report` (negation, uncertainty, look-alike exclusions).

    Returns:
        rule name -> :class:`Label`, for every rule.
    """
    sentences = split_report_sentences(report)
    return {
        rule.name: aggregate(m.label for sentence in sentences for m in _sentence_mentions(_compiled(rule), sentence))
        for rule in rules
    }


def label_reports(reports: Iterable[str]) -> list[dict[str, Label]]:
    """Label several reports (see :func:`label_report`)."""
    return [label_report(report) for report in reports]


__all__ = [
    "CHEXPERT_NUMERIC",
    "Label",
    "LabelerResult",
    "Mention",
    "OBSERVATIONS",
    "OBSERVATION_RULES",
    "OTHER_FINDING",
    "OTHER_FINDING_RULE",
    "ObservationRule",
    "PATHOLOGIES",
    "aggregate",
    "label_report",
    "label_report_with_mentions",
    "label_reports",
    "label_with_rules",
    "split_report_sentences",
]
