"""A rule-based labeler of the 14 CheXpert observations in free-text chest X-ray reports.

Each observation gets one of four values (:class:`Label`): positive, negative, uncertain or not mentioned. The
labeler reproduces the Stanford CheXpert labeler (https://github.com/stanfordmlgroup/chexpert-labeler, MIT
licence; Irvin et al., AAAI 2019) without its dependency parser: its mention and unmention phrase lists
(``phrases/mention``, ``phrases/unmention``) are the mention rules below, and the negation and uncertainty rules
of its three NegBio files (``patterns/pre_negation_uncertainty.txt``, ``patterns/negation.txt``,
``patterns/post_negation_uncertainty.txt``) are the cues below, each with the direction its file gives it.

How a report is labelled:

1. The text is lowercased, ``and/or`` and ``a/b`` become ``or`` / ``a or b`` (as CheXpert's loader does), and
   it is split into sentences (at ``.``/``!``/``?`` not followed by a digit, at line breaks and at list numbers
   such as ``"2. "``). Each sentence is cut into clauses at scope breakers (``;``, *but*, *however*,
   *although*, *except*, *other than*, *which*, *there is* ...); inside a clause, a finite verb followed by a
   comma, or a comma before *the* / *there*, also ends the reach of a cue written before it.
2. Every *mention* of an observation is found (:data:`OBSERVATION_RULES`; CheXpert's phrases starting at a word
   boundary), minus look-alikes (*pericardial effusion*, *calcified nodule*, *massive*, *pleural scar* for Lung
   Opacity, CheXpert's positional unmentions *over / in the (left, right, superior) heart* ...). The heart and
   mediastinum phrases of CheXpert's lists (*the heart*, *heart size*, *cardiac silhouette*, *contour*,
   *mediastinum*, *mediastinal silhouette* ...) are *structures*: a mention when a descriptor or a cue goes with
   them (see 4).
3. A mention's value follows CheXpert's order of rule files: a **pre-negation uncertainty** cue (*cannot exclude*,
   *is not excluded*, *cannot rule out*, *no new*, *no evidence to rule out*) makes it uncertain; otherwise a
   **negation** cue makes it negative; otherwise a **post-negation uncertainty** cue makes it uncertain; otherwise
   it is positive. The cues that reach a mention are: the nearest cue written before it in its clause
   (:data:`BEFORE_CUES`: *no*, *without*, *no definite*, *no obvious*, *no evidence of*, *negative for*, *free
   of*, *clear(ing) of*, *history of*, *resolution / disappearance / drainage / removal of*, *rule out*,
   *exclude*, *rather than* ...; *possible*, *probable*, *questionable*, *suspected*, *suspicious for*,
   *question of*, *suggestion of*, *concern for*, *favor*, *consider*, *maybe*, *may / could / might / would*,
   *secondary to*, *less likely*, *versus* ...; a pseudo-negation such as *no change in* blocks it), the cues
   right after it (:data:`AFTER_CUES`: *has resolved*, *is absent*, *removed*, *is no longer seen*, *has
   cleared*, *with interval resolution*, *is excluded*, *is normal*; *is suspected*, *is possible*, *could be
   present*, *is poorly evaluated*, *is not (well) visualized*, *is obscured*, *is not clearly seen*, *was not
   appreciated*, *may have this appearance*, *is less likely*, *versus*), a coordination by *or* (*atelectasis
   or pneumonia*), and CheXpert's always-hedged phrases (*vascular congestion*, *pulmonary congestion*,
   *indistinctness*, *vascular prominence*). Negation reaches across a list (*no effusion, pneumothorax or
   consolidation*) and wins over the *or* of that list, as in CheXpert.
4. A heart / mediastinum structure takes the value of its descriptors and cues, by the same order: *normal*,
   *unremarkable*, *within normal limits*, *at the upper limits of normal*, *not enlarged*, *obscures the
   silhouette* (negation); *stable*, *unchanged*, *not changed*, *no change in*, *similar to prior*, *stable
   appearance of*, *borderline heart size*, *obscured*, *may appear* (post-negation uncertainty); *enlarged*,
   *large*, *increased*, *prominent*, *widened*, *borderline* (positive).
5. The mentions of a report are aggregated per observation with CheXpert's aggregation: a negative and an
   uncertain mention give uncertain, even beside a positive one (its first case); otherwise positive > uncertain
   > negative > not mentioned. A positive or uncertain ``"CHF"`` / ``"heart failure"`` also makes Cardiomegaly
   uncertain. A sentence starting with ``"findings: no "`` or ``"impression: no "`` is negative throughout (NegBio's
   sentence rule).
6. **No Finding** is derived as CheXpert does: positive when no mention other than a support device is positive or
   uncertain, the *other findings* of its No Finding list included (:data:`OTHER_FINDING_RULE`: emphysema,
   granuloma, calcification, scoliosis, thickening ...); not mentioned otherwise (never negative or uncertain).

Deliberate differences from the Stanford labeler (each with its reason) are listed in docs/evaluation.md; the
main ones: phrases start at a word boundary (``tube`` is not in ``tuberculosis``); a heart or mediastinum phrase
with nothing said about it is not a mention (CheXpert calls *"calcified granuloma adjacent to the heart"*
Cardiomegaly positive); a few negations CheXpert's rules miss are read as negations (*is not seen*, *is not
identified*, *resolved* without an auxiliary, *absence of*, *none*, *neither / nor*) and *unlikely* as
uncertain, because CheXpert reads those statements as positive; *no evidence of new X* is uncertain like *no new
X* (CheXpert's detector skips every negation rule of a mention modified by *new*, so it calls it positive).
The project's conformance study (``research/labeler/chexpert_conformance.py``) measures the agreement.
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

# The three rule files of CheXpert, in the order it applies them, and what each makes of a mention.
PRE_NEGATION_UNCERTAINTY = "pre_negation_uncertainty"
NEGATION = "negation"
POST_NEGATION_UNCERTAINTY = "post_negation_uncertainty"
PSEUDO_NEGATION = "pseudo_negation"
_RULE_ORDER = (PRE_NEGATION_UNCERTAINTY, NEGATION, POST_NEGATION_UNCERTAINTY)
_RULE_LABEL = {PRE_NEGATION_UNCERTAINTY: Label.UNCERTAIN, NEGATION: Label.NEGATIVE,
               POST_NEGATION_UNCERTAINTY: Label.UNCERTAIN}


@dataclass(frozen=True)
class ObservationRule:
    """Patterns of one observation (regular expressions applied to lowercased text).

    Attributes:
        name: the CheXpert observation.
        mentions: patterns whose match is a mention of the finding (its value decided by the cues around it).
        exclusions: patterns of look-alike phrases; a mention inside one of their matches is ignored.
        normal_phrases: patterns stating the structure is normal (value negative, the negation rules' "normal").
        borderline_phrases: patterns stating the finding is borderline (value uncertain).
        stable_phrases: patterns stating the structure is stable or unchanged (value uncertain, as in CheXpert),
            unless a normal phrase covers the same words ("heart size is normal and stable" is negative).
        hedged_mentions: mentions that are uncertain when nothing negates them (CheXpert's "vascular
            congestion", "indistinctness" ...).
        structures: patterns of anatomical structures (CheXpert's "the heart", "cardiac silhouette", "contour"
            ...) that are a mention only with a descriptor or a cue; their value comes from the descriptors
            (normal / stable / enlarged ...) and the cues, in CheXpert's order of rule files.
    """

    name: str
    mentions: tuple[str, ...]
    exclusions: tuple[str, ...] = ()
    normal_phrases: tuple[str, ...] = ()
    borderline_phrases: tuple[str, ...] = ()
    stable_phrases: tuple[str, ...] = ()
    hedged_mentions: tuple[str, ...] = ()
    structures: tuple[str, ...] = ()


# CheXpert's positional unmentions of the heart and mediastinum phrases ("over the heart", "in the left heart"; its
# "in the  mediastinum" has two spaces and never matches, so "in the mediastinum" stays a mention).
_POSITION = r"(?:over|overly|in) the (?:superior |left |right )?"
_CARDIAC_STRUCTURES = (
    r"\bthe heart\b", r"\bheart size\b", r"\bcardiac (?:size|shadow|contours?|silhouette)\b",
    # not in CheXpert's list (it needs "the heart"): "heart is enlarged", "heart appears normal"
    r"(?<!the )\bheart(?= (?:is|appears?|remains?|was|seems)\b)",
)
_MEDIASTINAL_STRUCTURES = (
    r"(?<![\w-])mediastinum\b", r"\bcardiomediastinum\b", r"contours?\b", r"mediastinal configuration",
    r"mediastinal silhouette", r"\bpericardial silhouette", r"\bcardiac silhouette and vascularity",
)

OBSERVATION_RULES: tuple[ObservationRule, ...] = (
    ObservationRule(
        name="Enlarged Cardiomediastinum",
        mentions=(r"\bmediastinal (?:widening|enlargement|prominence)",),
        exclusions=(
            _POSITION + r"(?:cardiomediastinum|contour|mediastinal configuration|mediastinal silhouette|"
            r"pericardial silhouette|cardiac silhouette and vascularity)",
        ),
        structures=_MEDIASTINAL_STRUCTURES,
    ),
    ObservationRule(
        name="Cardiomegaly",
        mentions=(r"\bcardiomegaly", r"\bcardiac enlargement", r"\benlarged heart"),
        exclusions=(_POSITION + r"(?:heart|cardiac (?:size|shadow|contour|silhouette)|enlarged heart)",),
        structures=_CARDIAC_STRUCTURES,
    ),
    ObservationRule(
        name="Lung Lesion",
        mentions=(
            r"\bmass(?:es)?\b", r"\bnodular (?:density|densities|opacity|opacities|opacification)", r"\bnodule",
            r"\blump", r"\bcavitary lesion", r"\bcarcinoma", r"\bneoplasm", r"\btumor",
            # not in CheXpert's list
            r"\blesions?\b", r"\btumour", r"\bmalignan\w*", r"\bcancer", r"\bcavitation",
        ),
        exclusions=(
            r"calcified nodul", r"massive", r"massengale",
            r"mass effect",
            r"(?:bony|bone|lytic|sclerotic|blastic|osseous|skeletal|expansile|rib|osteolytic) (?:\w+ )?lesions?",
            r"lesions? (?:of|in) the (?:\w+ )?(?:rib|bone|spine|vertebra\w*|humerus|clavicle)",
            r"(?:soft tissue|breast) (?:\w+ )?(?:mass|nodul\w*|lesion)",
        ),
    ),
    ObservationRule(
        name="Lung Opacity",
        mentions=(
            r"\bopaci", r"\bdecreased translucency", r"\bincreased density", r"\bair[- ]?space disease",
            r"\binfiltrat(?:e|ion)", r"\binterstitial (?:marking|pattern|lung)", r"\breticular (?:pattern|marking)",
            r"\breticulation", r"\bparenchymal scarring", r"\bperibronchial thickening", r"\bwall thickening",
            r"\bscar",
            # not in CheXpert's list
            r"\bhaz(?:y|iness)\b", r"\bground[- ]glass",
        ),
        exclusions=(r"pleural scar",),
    ),
    ObservationRule(
        name="Edema",
        mentions=(r"\bedema", r"\bheart failure", r"\bchf", r"\bkerley"),
        exclusions=(r"(?:soft tissue|subcutaneous|extremity|wall) edema",),
        hedged_mentions=(
            r"\bvascular congestion", r"\bpulmonary congestion", r"\bindistinctness", r"\bvascular prominence",
            # not in CheXpert's list
            r"\b(?:venous|interstitial) congestion|\bvascular engorgement",
        ),
    ),
    ObservationRule(name="Consolidation", mentions=(r"\bconsolidat",)),
    ObservationRule(
        name="Pneumonia",
        mentions=(r"pneumonia", r"\binfection", r"\binfectious"),
        exclusions=(r"granulomatous (?:\w+ )?(?:infection|disease|process)", r"(?:prior|old|remote|healed) (?:\w+ )?infection"),
    ),
    ObservationRule(name="Atelectasis", mentions=(r"\batelecta", r"\bcollapse")),
    ObservationRule(name="Pneumothorax", mentions=(r"pneumothora(?:x|ces)",)),
    ObservationRule(
        name="Pleural Effusion",
        mentions=(
            r"\bpleural fluid", r"effusion",
            # not in CheXpert's list
            r"\bhydrothorax|\bhemothorax",
            r"\bblunt(?:ing|ed) (?:of )?(?:the )?(?:\w+ ){0,2}?(?:costophrenic|cp|costodiaphragmatic) (?:angles?|sulc\w+|recess\w*|xxxx)",
            r"\b(?:costophrenic|cp) (?:angles?|sulc\w+|xxxx) (?:\w+ ){0,3}?blunt\w*",
        ),
        exclusions=(r"pericardial effusion", r"joint effusions?"),
    ),
    ObservationRule(
        name="Pleural Other",
        mentions=(
            r"\bpleural thickening", r"\bfibrosis", r"\bfibrothorax", r"\bpleural scar", r"\bpleural parenchymal scar",
            r"\bpleuro-parenchymal scar", r"\bpleuro-pericardial scar",
            # not in CheXpert's list
            r"\bpleural (?:\w+ )?(?:plaques?|calcifications?)", r"\bapical (?:pleural )?(?:cap|capping)",
        ),
    ),
    ObservationRule(name="Fracture", mentions=(r"\bfracture", r"\bfx\b")),
    ObservationRule(
        name="Support Devices",
        mentions=(
            r"\bpacer", r"\blines?\b", r"\bpicc", r"\btubes?\b", r"\bvalve", r"\bcatheter", r"\bpacemaker",
            r"\bhardware", r"\barthroplast", r"\bmarker", r"\bicd\b", r"\bdefib", r"\bdevice", r"\bdrains?\b",
            r"\bplates?\b", r"\bscrews?\b", r"\bcannula", r"\bapparatus", r"\bcoils?\b", r"\bsupport",
            r"\bequipment", r"\bmediport",
            # not in CheXpert's list
            r"\baicd\b", r"\bport\b|port-a-cath|portacath", r"\bshunt\b", r"\bstents?\b", r"\bsternotomy wires?",
            r"\bsternal wires?", r"\bsurgical (?:\w+ )?clips?|\bclips\b", r"\bsutures?\b", r"\bstaples\b",
            r"\bstimulator", r"(?:\bxxxx|catheter|line|tube|port) tips?\b",
            r"\btips? (?:[\w-]+ ){0,5}?(?:svc|atri\w+|cavoatrial|cava|brachiocephalic|carina)",
        ),
        exclusions=(
            r"port of entry",
            r"(?:kerley|septal|pleural|fissural|skin|air-fluid|fluid) (?:\w+ )?lines?",
            r"valves? (?:\w+ )?calcifi\w*|calcifi\w* (?:of the )?(?:\w+ )?valves?",
            r"\bsupportive\b",
        ),
    ),
)
"""The 14 observations' rules (No Finding has none: it is derived). Each list starts with CheXpert's phrases."""

OTHER_FINDING = "Other Finding"
"""Findings outside the 14 observations that still rule out No Finding (the other-finding list of CheXpert)."""

OTHER_FINDING_RULE = ObservationRule(
    name=OTHER_FINDING,
    mentions=tuple(
        rf"\b{stem}"
        for stem in (
            "emphysema", "blunt", "density", "elevation", "eventration", "scoliosis", "degenera", "calcifi",
            "hyperinflation", "bronchospasm", "asthma", "hernia", "copd", "interstitial markings", "plaque",
            "osteophytosis", "aortic disease", "bronchiolitis", "airways disease", "thickening", "cephalization",
            "aspiration", "bullae", "hyperinflat", "contusion", "atherosclero", "osteopenia", "metastasis",
            "granuloma", "pneumomediastinum", "pneumoperitoneum", "osteodystrophy", "cuffing", "irregular lucency",
            "inflam", "fissure", "hypertension", "prominen", "kyphosis", "defib", "hyperexpansion", "bullet",
            "reticula", "thoracentesis", "bronchitis", "volume loss", "deformity", "hemorrhage", "hematoma",
            "radiopaque", "aerophagia", "arthropathy", "tracheostomy",
        )
    ),
)
"""CheXpert's No Finding list (``phrases/mention/no_finding.txt``), each phrase starting at a word boundary."""

# --- cues --------------------------------------------------------------------------------------------------------
# (rule file, pattern). Longer cues are listed first and mask the shorter ones they contain ("cannot exclude" hides
# "exclude", "no definite" hides "no"). Sources: CheXpert's patterns/*.txt (the rule each realises is named).
BEFORE_CUES: tuple[tuple[str, str], ...] = (
    # pseudo-negations: a change is negated, not the finding
    (PSEUDO_NEGATION, r"\bno (?:\w+ )?(?:change|increase|decrease|worsening|improvement|progression) (?:in|of)\b"),
    (PSEUDO_NEGATION, r"\bwithout (?:\w+ )?(?:change|increase|worsening) (?:in|of)\b|\bnot only\b"),
    # pre_negation_uncertainty.txt: no evidence to rule out / cannot exclude / cannot rule out / no new (area of)
    (PRE_NEGATION_UNCERTAINTY, r"\bno (?:\w+ )?(?:evidence|signs?|findings?) to (?:rule out|exclude)\b"),
    (PRE_NEGATION_UNCERTAINTY, r"\b(?:cannot|can not|can't|could not|not|difficult to) (?:be )?(?:entirely |completely "
                               r"|definitely |totally )?(?:exclude[ds]?|rule[ds]? out|ruled out)\b"),
    (PRE_NEGATION_UNCERTAINTY, r"\b(?:no|without) (?:(?:radiographic )?(?:evidence|signs?) (?:of|for) )?(?:definite |"
                               r"obvious |significant |acute )?new\b"),
    # negation.txt
    (NEGATION, r"\bno (?:[\w-]+ ){0,6}?(?:to suggest|to explain|to diagnose|suggestive of|suspicious for|concerning for|"
               r"worrisome for|to indicate|indicative of|diagnostic of)\b"),  # there is no NN to suggest XXX
    (NEGATION, r"\bno (?:obvious |definite )?associated\b|\bno (?:definite|obvious)\b"),  # no definite / obvious XXX
    # "no suspicious nodules": the negation of the list wins over the adjective's uncertainty (CheXpert's order)
    (NEGATION, r"\b(?:no|without) (?:possible|probable|questionable|suspicious|suspected)\b"),
    (NEGATION, r"\b(?:no|without) (?:radiographic |definite |convincing |acute |xxxx |other )?(?:evidence|signs?|findings?)"
               r"(?: seen)? (?:of|for)\b"),  # (no|without) evidence|finding of|for XXX
    (NEGATION, r"\b(?:no|without) (?:evidence of )?(?:development|developing|focus|foci|areas?) of\b"),
    (NEGATION, r"\bno evidence of developing\b|\bno moderate to\b"),
    (NEGATION, r"\bnegative for\b|\bfree of\b|\bclear(?:ing)? of\b|\bcleared\b|\bhistory of\b|\bdisappearance of\b"
               r"|\b(?:interval )?resolution of\b|\bdrainage of\b|\bremoval of\b|\bremoved\b|\brule out\b|\br/o\b"
               r"|\b(?:to )?exclude[ds]?\b|\brather than\b"),
    # not in CheXpert's files: negations it reads as positive
    (NEGATION, r"\babsence of\b|\babsent\b|\bnone\b|\bneither\b|\bnor\b|\bfails? to (?:show|demonstrate)\b|\bresolved\b"),
    (NEGATION, r"\bno\b|\bnot\b|\bwithout\b"),  # no XXX / general negative case
    # post_negation_uncertainty.txt
    (POST_NEGATION_UNCERTAINTY, r"\bsuspicious for\b|\bworrisome for\b|\bconcern(?:ing)? for\b|\bsuspicion for\b"
                                r"|\bquestion(?: of)?(?: left)?\b|\bsuggestion of\b"),
    (POST_NEGATION_UNCERTAINTY, r"\b(?:may|might|could|would|can|possibly) (?:\w+ )?(?:represent|reflect|indicate|include)\w*"
                                r"|\bcan (?:also )?(?:be (?:consistent with|compatible with|due to|related to))"),
    (POST_NEGATION_UNCERTAINTY, r"\b(?:is|are|be|was|were) (?:\w+ )?compatible with\b"),
    (POST_NEGATION_UNCERTAINTY, r"\bdifferential diagnosis (?:would )?includes?\b|\bcorrelat\w* clinically for\b"
                                r"|\bcorrelation for symptoms of\b|\bsecondary to\b"),
    (POST_NEGATION_UNCERTAINTY, r"\bless likely\b|\bunlikely\b|\bmaybe\b|\bmay\b|\bmight\b|\bcould\b|\bwould\b"),
    (POST_NEGATION_UNCERTAINTY, r"\bpossible\b|\bpossibly\b|\bpresumably\b|\bprobable\b|\bquestionabl[ey]\b"
                                r"|\bsuspect(?:ed|s)?\b|\bsuspicious\b|\bfavou?r(?:s|ing)?\b|\bconsider\b"),
    (POST_NEGATION_UNCERTAINTY, r"\bversus\b|\bvs\b"),
)
"""Cues written before a mention (the nearest one in its clause reaches it)."""

_GAP = r"^\W*(?:[\w-]+,? ){0,5}?"
_TIGHT = r"^ ?(?:[\w-]+ ){0,2}"
AFTER_CUES: tuple[tuple[str, str, str], ...] = (
    # (rule file, words allowed between the mention and the cue, pattern)
    (PRE_NEGATION_UNCERTAINTY, _GAP, r"(?:(?:is|are|was|were) )?(?:cannot|can not|can't|could not|not) (?:be )?"
                                     r"(?:entirely |completely |definitely |totally )?(?:excluded|ruled out)\b"),
    (POST_NEGATION_UNCERTAINTY, _GAP, r"(?:(?:is|are|was|were) )?not clearly (?:seen|visualized|identified)\b"),
    (POST_NEGATION_UNCERTAINTY, _GAP, r"(?:(?:is|are|was|were) )?not (?:well )?(?:visualized|evaluated)\b"
                                      r"|(?:is|are|was|were) (?:poorly|incompletely) (?:evaluated|visualized)\b"),
    (POST_NEGATION_UNCERTAINTY, _GAP, r"(?:(?:is|are|was|were) )?not (?:\w+ )?appreciated\b"),
    (NEGATION, _GAP, r"(?:has|have) (?:\w+ )?(?:resolved|cleared)\b|(?:is|are|was|were) (?:now )?(?:resolved|absent|"
                     r"excluded|removed)\b|(?:has|have) been (?:\w+ )?removed\b|now removed\b"),
    (NEGATION, _GAP, r"(?:(?:is|are|was|were) )?no longer (?:\w+ )?(?:seen|visualized|identified|present|evident|"
                     r"demonstrated|apparent|visible)\b"),
    (NEGATION, _GAP, r"with (?:interval |near complete |complete )?resolution\b"),
    (NEGATION, _GAP, r"(?:was|were|is|are) previously (?:demonstrated|visualized)\b"),
    (NEGATION, _GAP, r"(?:appears?|is|are|remains?) (?:\w+ )?(?:normal|unremarkable|within (?:\w+ )?(?:normal )?limits)\b"),
    (NEGATION, _TIGHT, r"(?:absent|removed|resolved|cleared)\b"),
    # not in CheXpert's files: negations it reads as positive
    (NEGATION, _GAP, r"(?:(?:is|are|was|were|has been|have been) )?not (?!clearly\b)(?:\w+ )?(?:seen|identified|present|"
                     r"demonstrated|evident|noted|detected|visible|apparent)\b"),
    (POST_NEGATION_UNCERTAINTY, _GAP, r"(?:is|are|was|were) (?:suspected|possible|questioned)\b"),
    (POST_NEGATION_UNCERTAINTY, _TIGHT, r"suspected\b"),
    (POST_NEGATION_UNCERTAINTY, _GAP, r"(?:could|might|may|possibly|can) (?:also )?be present\b"),
    (POST_NEGATION_UNCERTAINTY, _GAP, r"(?:is|are|was|were) (?:partially |partly )?obscured\b"),
    (POST_NEGATION_UNCERTAINTY, _TIGHT, r"obscure[ds]\b"),
    (POST_NEGATION_UNCERTAINTY, _GAP, r"(?:may|might|could|can) (?:also )?have this appearance\b"),
    (POST_NEGATION_UNCERTAINTY, _GAP, r"(?:is|are) less likely\b|less likely\W*$|(?:is|are) unlikely\b"),
    (POST_NEGATION_UNCERTAINTY, _TIGHT, r"(?:versus|vs)\b"),
)
"""Cues written after a mention (all that match reach it)."""

_CLAUSE_BREAK = re.compile(
    r";|\bbut\b|\bhowever\b|\balthough\b|\bthough\b|\bexcept\b|\bother than\b|\baside from\b|\bapart from\b"
    r"|\bwhereas\b|\bwhile\b|\bwhich\b|\bwith the exception of\b|\bbesides\b|\bbeyond\b"
    r"|,? and there (?:is|are|has been|have been)\b|, there (?:is|are)\b|\bthere is\b|\bthere are\b"
)
# A cue written before this no longer reaches what follows (a finished clause, or a new subject after a comma).
_SCOPE_CUT = re.compile(r"\b(?:is|are|was|were|appears?|remains?)\b[^,]*,|, (?:and )?(?:the|there)\b|:")
_AFTER_STOP = re.compile(r", (?:and )?(?:the|there)\b|:")
# "X or Y", "X, Y, or Z": the words between a mention and "or" modify it (no preposition, verb or article)
_NOT_MODIFIER = r"(?!(?:given|of|in|at|on|with|without|for|to|from|by|is|are|was|were|the|a|an|and|that|which)\b)"
_OR_AFTER = re.compile(rf"^\W*(?:{_NOT_MODIFIER}[\w-]+,? ){{0,3}}?(?:and/or|or)\b")
_OR_BEFORE = re.compile(rf"\b(?:and/or|or)\W+(?:{_NOT_MODIFIER}[\w-]+ ){{0,3}}?$")
_SENTENCE_NEGATED = re.compile(r"^(?:findings|impression): no ")
_LIST_NUMBER_ONLY = re.compile(r"\d{1,2}[.)]?")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])(?!\d)\s*|\n+|(?:^|\s)\d{1,2}[.)]\s")

# Descriptors of a heart / mediastinum structure (step 4 of the module docstring), after it and before it.
_STRUCTURE_AFTER: tuple[tuple[str, str], ...] = (
    (NEGATION, r"\b(?:normal|unremarkable|wnl)\b|\bwithin (?:\w+ )?limits\b|\bnot (?:\w+ )?(?:enlarged|large|widened|"
               r"prominent|increased)\b"),
    (POST_NEGATION_UNCERTAINTY, r"\b(?:stable|unchanged)\b|\bnot (?:\w+ )?changed\b|\bno (?:\w+ )?change\b|\bsimilar (?:to|in "
                                r"appearance to)\b|\bobscured\b|\b(?:may|might|could|can) appear\b|\bnot (?:well )?"
                                r"visualized\b|\b(?:poorly|incompletely) evaluated\b"),
    ("positive", r"\benlarg\w*|\blarge\b|\bincreased?\b|\bprominen\w*|\bwiden\w*|\bborderline\b"),
)
_STRUCTURE_BEFORE: tuple[tuple[str, str], ...] = (
    (NEGATION, r"\b(?:normal|unremarkable)\b"),
    # "stable (enlarged) cardiac silhouette", "stable appearance of the heart" (not "unchanged widening of the ...")
    (POST_NEGATION_UNCERTAINTY, r"\b(?:stable|unchanged) (?:(?!of\b)[\w-]+ ){0,2}$|\bstable appearance of (?:the )?(?:[\w-]+ )?$"
                                r"|\bno (?:\w+ )?change (?:in|of)\b|\bobscured (?:(?!of\b)[\w-]+ ){0,2}$"),
    ("positive", r"\benlarg\w*|\blarge\b|\bincreased\b|\bprominen\w*|\bwiden\w*|\bborderline\b"),
)
_OBSCURES_SILHOUETTE = re.compile(r"\bobscur(?:es|ing) (?:the )?$")


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
    structures: tuple[re.Pattern[str], ...]


def _compile_rule(rule: ObservationRule) -> _CompiledRule:
    return _CompiledRule(
        rule.name, _compile(rule.mentions), _compile(rule.exclusions), _compile(rule.normal_phrases),
        _compile(rule.borderline_phrases), _compile(rule.stable_phrases), _compile(rule.hedged_mentions),
        _compile(rule.structures),
    )


_RULES = tuple(_compile_rule(rule) for rule in (*OBSERVATION_RULES, OTHER_FINDING_RULE))
_BEFORE = tuple((kind, re.compile(pattern)) for kind, pattern in BEFORE_CUES)
_AFTER = tuple((kind, re.compile(gap + "(?:" + pattern + ")")) for kind, gap, pattern in AFTER_CUES)
_STRUCTURE_AFTER_RE = tuple((kind, re.compile(pattern)) for kind, pattern in _STRUCTURE_AFTER)
_STRUCTURE_BEFORE_RE = tuple((kind, re.compile(pattern)) for kind, pattern in _STRUCTURE_BEFORE)
_ABNORMAL_IN_GAP = re.compile(r"enlarg|\blarge|prominen|increas|widen|borderline|abnormal|not normal")


def split_report_sentences(report: str) -> list[str]:
    """Lowercase ``report``, rewrite ``and/or`` and ``a/b`` as CheXpert does, and split it into sentences."""
    text = re.sub(r"\s+", " ", report.lower()).replace("and/or", "or")
    text = re.sub(r"(?<=[a-z])/(?=[a-z])", " or ", text)
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
    """All before-cues of ``text`` as (start, end, kind, text); longer cues mask the shorter ones they contain."""
    taken = [False] * len(text)
    cues = []
    for kind, pattern in _BEFORE:
        for match in pattern.finditer(text):
            if match.start() == match.end() or any(taken[match.start() : match.end()]):
                continue
            for i in range(match.start(), match.end()):
                taken[i] = True
            cues.append((match.start(), match.end(), kind, match.group(0)))
    return sorted(cues)


def _scope_left(sentence: str, left: int, start: int) -> int:
    """Where the words that can describe a mention starting at ``start`` begin (after the last ``_SCOPE_CUT``)."""
    for match in _SCOPE_CUT.finditer(sentence, left, start):
        left = max(left, match.end())
    return left


def _after_window(sentence: str, end: int, right: int) -> str:
    stop = _AFTER_STOP.search(sentence, end, right)
    return sentence[end : stop.start() if stop else right]


def _cues_of_mention(sentence: str, start: int, end: int) -> list[tuple[str, str]]:
    """Every (rule file, cue text) that reaches the mention ``sentence[start:end]`` (step 3)."""
    left, right = _clause_bounds(sentence, start, end)
    found: list[tuple[str, str]] = []
    before = sorted((cue for cue in _find_cues(sentence[left:end]) if cue[0] + left < start),
                    key=lambda cue: (cue[1], cue[1] - cue[0]), reverse=True)
    for _, cue_end, kind, text in before:  # the nearest cue; behind an uncertainty word, the negation of its list
        if kind == PSEUDO_NEGATION or _SCOPE_CUT.search(sentence, left + cue_end, start):
            break
        found.append((kind, text))
        if kind != POST_NEGATION_UNCERTAINTY:
            break
    after = _after_window(sentence, end, right)
    for kind, pattern in _AFTER:
        match = pattern.search(after)
        if match:
            found.append((kind, match.group(0).strip()))
    alternative = _OR_AFTER.search(after) or _OR_BEFORE.search(sentence[_scope_left(sentence, left, start) : start])
    if alternative:  # "X or Y": uncertain unless a negation covers the list
        found.append((POST_NEGATION_UNCERTAINTY, alternative.group(0).strip()))
    return found


def _decide(found: Sequence[tuple[str, str]], default: Label = Label.POSITIVE) -> tuple[Label, str]:
    """CheXpert's order of rule files: pre-negation uncertainty, negation, post-negation uncertainty."""
    for kind in _RULE_ORDER:
        for cue_kind, text in found:
            if cue_kind == kind:
                return _RULE_LABEL[kind], text
    return default, next((text for kind, text in found if kind == "positive"), "")


def _mention_label(sentence: str, start: int, end: int, *, hedged: bool = False) -> tuple[Label, str]:
    """The value of the mention ``sentence[start:end]`` (step 3 of the module docstring)."""
    found = _cues_of_mention(sentence, start, end)
    if hedged:
        found.append((POST_NEGATION_UNCERTAINTY, "hedged mention"))
    return _decide(found)


def _structure_label(sentence: str, start: int, end: int) -> Optional[tuple[Label, str]]:
    """The value of a heart / mediastinum structure (step 4), or None when nothing is said about it."""
    left, right = _clause_bounds(sentence, start, end)
    found = _cues_of_mention(sentence, start, end)
    word_start = sentence.rfind(" ", 0, start) + 1  # "cardiomediastinal" for the phrase "mediastinal silhouette"
    before = re.split(r"[,;:]", sentence[_scope_left(sentence, left, word_start) : word_start])[-1]
    before = " ".join(before.split()[-5:]) + " "
    # "enlargement of the cardiac silhouette is unchanged": what follows describes the enlargement
    object_of = re.search(r"\bof (?:the )?$", before) is not None
    after = re.split(r"[,;:]", _after_window(sentence, end, right), maxsplit=1)[0]
    after = " ".join(after.split()[:9])
    for kind, pattern in _STRUCTURE_AFTER_RE:
        match = pattern.search(after)
        if match and not (object_of and kind != NEGATION):
            found.append((kind, match.group(0)))
    structure = sentence[start:end]
    if "silhouette" in structure and _OBSCURES_SILHOUETTE.search(before):
        found.append((NEGATION, before.strip()))  # "... obscures the cardiac silhouette"
    elif structure.startswith("heart size") and before.endswith("borderline "):
        found.append((POST_NEGATION_UNCERTAINTY, "borderline heart size"))
    else:
        for kind, pattern in _STRUCTURE_BEFORE_RE:
            match = pattern.search(before)
            if match:
                found.append((kind, match.group(0).strip()))
    if not found:
        return None
    label, cue = _decide(found)
    return label, cue or "descriptor"


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
    for patterns, label, reason in ((rule.normal_phrases, Label.NEGATIVE, "normal statement"),
                                    (rule.stable_phrases, Label.UNCERTAIN, "stable statement")):
        for pattern in patterns:
            for m in pattern.finditer(sentence):
                if _ABNORMAL_IN_GAP.search(m.group(0)) or _overlaps(m.span(), covered):
                    continue
                covered.append(m.span())
                found.append(Mention(rule.name, label, sentence, m.group(0), reason))
    excluded = _excluded_spans(rule, sentence)
    for hedged, patterns in ((False, rule.mentions), (True, rule.hedged_mentions)):
        for pattern in patterns:
            for m in pattern.finditer(sentence):
                if _overlaps(m.span(), excluded) or _overlaps(m.span(), covered):
                    continue
                covered.append(m.span())
                label, cue = _mention_label(sentence, m.start(), m.end(), hedged=hedged)
                found.append(Mention(rule.name, label, sentence, m.group(0), cue))
    for pattern in rule.structures:
        for m in pattern.finditer(sentence):
            if _overlaps(m.span(), excluded) or _overlaps(m.span(), covered):
                continue
            value = _structure_label(sentence, m.start(), m.end())
            if value is not None:
                covered.append(m.span())
                found.append(Mention(rule.name, value[0], sentence, m.group(0), value[1]))
    if _SENTENCE_NEGATED.match(sentence):
        found = [Mention(m.observation, Label.NEGATIVE, m.sentence, m.text, "findings: no") for m in found]
    return found


def _overlaps(span: tuple[int, int], spans: Sequence[tuple[int, int]]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in spans)


def aggregate(labels: Iterable[Label]) -> Label:
    """Combine mention values as CheXpert's aggregator does.

    A negative and an uncertain mention give uncertain (its first case, checked before the others, so even beside a
    positive one); otherwise positive > uncertain > negative > not mentioned.
    """
    values = set(labels)
    if Label.NEGATIVE in values and Label.UNCERTAIN in values:
        return Label.UNCERTAIN
    return max(values, key=_PRIORITY.__getitem__, default=Label.NOT_MENTIONED)


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
    labels["No Finding"] = _no_finding(mentions)
    return LabelerResult(labels=labels, mentions=mentions)


_FINDING_LABELS = (Label.POSITIVE, Label.UNCERTAIN)
_HEART_FAILURE = re.compile(r"heart failure|\bchf\b")


def _no_finding(mentions: Sequence[Mention]) -> Label:
    """CheXpert's rule: positive unless a mention other than a support device is positive or uncertain."""
    blocked = any(m.label in _FINDING_LABELS for m in mentions if m.observation != "Support Devices")
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
    "AFTER_CUES",
    "BEFORE_CUES",
    "CHEXPERT_NUMERIC",
    "Label",
    "LabelerResult",
    "Mention",
    "NEGATION",
    "OBSERVATIONS",
    "OBSERVATION_RULES",
    "OTHER_FINDING",
    "OTHER_FINDING_RULE",
    "ObservationRule",
    "PATHOLOGIES",
    "POST_NEGATION_UNCERTAINTY",
    "PRE_NEGATION_UNCERTAINTY",
    "PSEUDO_NEGATION",
    "aggregate",
    "label_report",
    "label_report_with_mentions",
    "label_reports",
    "label_with_rules",
    "split_report_sentences",
]
