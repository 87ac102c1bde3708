"""Sentences that realise each negation / uncertainty rule of the Stanford CheXpert labeler.

The CheXpert labeler (https://github.com/stanfordmlgroup/chexpert-labeler, MIT licence) classifies every mention
with three NegBio rule files, matched on a dependency parse in this order: ``patterns/pre_negation_uncertainty.txt``
(uncertain), then ``patterns/negation.txt`` (negative), then ``patterns/post_negation_uncertainty.txt``
(uncertain); the first file with a rule that matches a word of the mention decides, and a mention no rule matches
is positive. :data:`PATTERN_CASES` reproduces every rule line of the three files (commit
44ddeb363149aa657296237f18b5472a73c1756f) as data, each with sentences whose natural parse that rule matches, or
with the reason why no sentence is given. The sentences are this project's; the rule lines are CheXpert's.

Each sentence has ``{x}``, the mention the rule applies to (its label is the rule file's direction), and may have
``{y}``, a second mention whose label is given (``y``); ``{X}`` / ``{Y}`` are the same words capitalised. The
words come from one of the filler lists (:data:`FILLERS`): findings, heart / mediastinum phrases, adjectives,
devices ... .
"""

from __future__ import annotations

from dataclasses import dataclass

PRE_NEGATION = "pre_negation_uncertainty"
NEGATION = "negation"
POST_NEGATION = "post_negation_uncertainty"
RULE_FILES: tuple[str, ...] = (PRE_NEGATION, NEGATION, POST_NEGATION)
"""The three rule files, in the order CheXpert applies them."""

DIRECTION: dict[str, str] = {PRE_NEGATION: "uncertain", NEGATION: "negative", POST_NEGATION: "uncertain"}

FINDINGS: tuple[str, ...] = (
    "pneumothorax", "pleural effusion", "consolidation", "pulmonary edema", "atelectasis", "pneumonia",
    "rib fracture", "pulmonary nodule", "airspace opacity", "infiltrate", "cardiomegaly", "pleural thickening",
)
FILLERS: dict[str, tuple[str, ...]] = {
    # a finding noun phrase; the partner {y} is the next finding of the list
    "finding": FINDINGS,
    # heart / mediastinum phrases without an article ("Normal {x}.", "{X} within normal limits.")
    "anatomy": ("heart size", "cardiac silhouette", "cardiomediastinal silhouette", "mediastinal contour",
                "cardiac contour", "mediastinum", "mediastinal silhouette", "cardiac shadow"),
    # the same after "the" ("The {x} is normal.", "Normal size of the {x}.")
    "organ": ("heart", "cardiac silhouette", "mediastinum", "cardiomediastinal silhouette", "mediastinal contour"),
    "silhouette": ("cardiac silhouette", "mediastinal silhouette", "cardiomediastinal silhouette",
                   "pericardial silhouette"),
    # a mention used as an adjective of another noun ("No atelectatic changes.")
    "adjective": ("atelectatic", "consolidative", "infectious"),
    # a mention used as a noun modifier ("No edema pattern.")
    "compound": ("edema", "consolidation", "atelectasis", "opacity"),
    "device": ("chest tube", "endotracheal tube", "central venous catheter", "pacemaker", "nasogastric tube"),
    # CheXpert's always-uncertain phrases
    "hedged": ("vascular congestion", "pulmonary congestion", "indistinctness", "vascular prominence",
               "pulmonary vascular congestion"),
    "heart size": ("heart size",),
}


@dataclass(frozen=True)
class PatternCase:
    """One rule line of the CheXpert files and the sentences that realise it.

    Attributes:
        file: the rule file (:data:`RULE_FILES`).
        pattern: the rule line, as in the file.
        templates: sentences with ``{x}`` (and maybe ``{y}``); empty when no sentence realises the rule.
        fillers: the key of :data:`FILLERS` that fills ``{x}``.
        y: the label of ``{y}`` (``"positive"``, ``"negative"``, ``"uncertain"``); ``None``: the rule's direction.
        note: why the rule has no sentence, or what is special about it.
    """

    file: str
    pattern: str
    templates: tuple[str, ...] = ()
    fillers: str = "finding"
    y: str | None = None
    note: str = ""

    @property
    def direction(self) -> str:
        return DIRECTION[self.file]


_N, _PRE, _POST = NEGATION, PRE_NEGATION, POST_NEGATION
_HEART_LEMMAS = ("{lemma:/cardiomediastinal|pericardial|mediastinal|mediastinum|cardiomediastinum|contour|"
                 "configuration|silhouette|size|heart|shadow/}")

PATTERN_CASES: tuple[PatternCase, ...] = (
    # ---- pre_negation_uncertainty.txt --------------------------------------------------------------------------
    PatternCase(_PRE, "{} < {} ({lemma:/exclude/} >{} {lemma:/cannot/})",
                ("Cannot exclude {x}.", "We cannot exclude {x}.", "Cannot exclude a small {x}.")),
    PatternCase(_PRE, "{} < {} ({lemma:/exclude/} > {dependency:/neg/} {})",
                ("{X} is not excluded.", "{X} cannot be excluded.", "{X} can not be excluded.",
                 "Underlying {x} is not excluded.")),
    PatternCase(_PRE, "{} > {} {lemma:/new/} & > {dependency:/neg/} {lemma:/no/}",
                ("No new {x}.", "There is no new {x}.")),
    PatternCase(_PRE, "{} < {} ({lemma:/new/} > {} {lemma:/no/})", ("No new {x} is seen.",)),
    PatternCase(_PRE, "{} < {dependency:/compound/} ({} > {} {lemma:/new/} & > {} {lemma:/no/})",
                ("No new {x} pattern.",), fillers="compound"),
    PatternCase(_PRE, "{} < {} ({lemma:/area/} > {} {lemma:/no/} > {} {lemma:/new/})", ("No new area of {x}.",)),
    PatternCase(_PRE, "{} > {} ({lemma:/area/} > {} {lemma:/no/} > {} {lemma:/new/})", ("No new areas of {x}.",)),
    PatternCase(_PRE, "{} <{dependency:/nmod:out/} ({lemma:/rule/} > {} {lemma:/cannot/})",
                ("Cannot rule out {x}.", "We cannot rule out {x}.")),
    PatternCase(_PRE, "{} < {dependency:/nmod:out/} ({lemma:/rule/} < {} ({lemma:/evidence/} > {} {lemma:/no/}))",
                ("No evidence to rule out {x}.",)),
    # ---- negation.txt ------------------------------------------------------------------------------------------
    PatternCase(_N, "({} > {} {lemma:/definite/}) > {dependency:/neg/} {}",
                ("No definite {x}.", "There is no definite {x}.", "No definite {x} is seen.")),
    PatternCase(_N, "({} > {} {lemma:/obvious/}) > {dependency:/neg/} {}",
                ("No obvious {x}.", "There is no obvious {x}.")),
    PatternCase(_N, "{} > {dependency:/amod|nsubj/} {lemma:/normal|unremarkable/}",
                ("Normal {x}.", "Unremarkable {x}."), fillers="anatomy"),
    PatternCase(_N, "{} < {dependency:/amod|nsubj/} {lemma:/normal|unremarkable/}",
                ("The {x} is normal.", "The {x} is unremarkable."), fillers="organ"),
    PatternCase(_N, "({} > {} {}) < {dependency:/nsubj|dobj/} {lemma:/unremarkable|normal/}",
                ("The {x} is normal in appearance.",), fillers="organ"),
    PatternCase(_N, "{} < {} ({} > {dependency:/amod/} {lemma:/normal|unremarkable/})",
                ("Normal size of the {x}.",), fillers="organ"),
    PatternCase(_N, "{} < {} ({} < {dependency:/nsubj/} {lemma:/normal|unremarkable/})",
                ("The size of the {x} is normal.",), fillers="organ"),
    PatternCase(_N, "{} < {dependency:/conj:no/} {}", ("Clear lungs, no {x}.",),
                note="a coordination whose coordinator is 'no' (a parse of lists such as 'clear lungs, no X')"),
    PatternCase(_N, "{} < {} ({} < {dependency:/conj:or/} ({} > {} {lemma:/no/}))",
                ("No {y} or signs of {x}.",), y="negative"),
    PatternCase(_N, "{} < {dependency:/nsubj/} ({lemma:/limit.*/} > {} {lemma:/upper/} & > {dependency:/nmod:of/} "
                "{lemma:/normal/} & > {dependency:/case/} {lemma:/at|within/})",
                ("The {x} is at the upper limits of normal.", "The {x} is within the upper limits of normal."),
                fillers="organ"),
    PatternCase(_N, "{} < {} ({dependency:/exclude/} < {} ({} > {} {lemma:/no/}))",
                note="inert: it tests a node for 'dependency', an attribute only edges have, so it never matches"),
    PatternCase(_N, "({lemma:/silhouette/} > {} {}) < {dependency:/dobj|nsubj/} {lemma:/obscure/}",
                ("Overlying soft tissue obscures the {x}.",), fillers="silhouette",
                note="an active 'obscures the silhouette'; the passive 'the silhouette is obscured' (nsubjpass) is "
                "left to the post-negation 'obscure' rule (uncertain)"),
    PatternCase(_N, "({} > {dependency:/amod/} {lemma:/normal|unremarkable/}) < {dependency:/dobj|nsubj/} "
                "{lemma:/demonstrate.*|show|present|display/}",
                ("The radiograph demonstrates a normal {x}.", "Frontal view shows normal {x}."), fillers="anatomy"),
    PatternCase(_N, "{} < {dependency:/nmod:of/} ( {lemma:/appearance/} > {dependency:/amod/} {lemma:/normal/} & < "
                "{dependency:/dobj/} {lemma:/demonstrate.*|show|present|display/})",
                ("The radiograph shows normal appearance of the {x}.",), fillers="organ"),
    PatternCase(_N, "{} < {dependency:/amod/} ({} < {dependency:/dep|nsubj/} {lemma:/normal|unremarkable/})",
                ("{X} changes are normal.",), fillers="adjective",
                note="a mention used as the adjective of the subject of 'normal'"),
    PatternCase(_N, "{} < {dependency:/amod/} ({} > {dependency:/neg/} {lemma:/no/})",
                ("No {x} changes.", "No {x} process."), fillers="adjective"),
    PatternCase(_N, "{} < {dependency:/amod/}({lemma:/finding.*/} < {dependency:/dobj/} ({lemma:/acute/} > "
                "{dependency:/nsubj/} {lemma:/no/}))",
                ("No acute {x} findings.",), fillers="adjective"),
    PatternCase(_N, "{} < {dependency:/amod/} ({lemma:/structure.*/} < {dependency:/dep|nsubj/} ({lemma:/appear/} > "
                "{dependency:/xcomp/} {lemma:/normal|unremarkable/}))",
                note="no listed mention phrase is an adjective of 'structures' ('mediastinal structures' is not a "
                "mention), so no sentence of the 14 observations reaches it"),
    PatternCase(_N, "{} < {dependency:/compound/} ({} > {dependency:/neg/} {})",
                ("No {x} pattern.",), fillers="compound"),
    PatternCase(_N, "{} < {dependency:/nsubj/} {lemma:/absent/}", ("{X} is absent.", "{X} absent.")),
    PatternCase(_N, "{} < {dependency:/amod/} ({} < {dependency:/nmod:of/} ({lemma:/evidence/} > {dependency:/case/} "
                "{lemma:/without/}))",
                ("Without evidence of {x} changes.",), fillers="adjective"),
    PatternCase(_N, "{} < {dependency:/amod/} ({} < {dependency:/nmod:of/} ({lemma:/evidence/} > {dependency:/neg/} {}))",
                ("No evidence of {x} changes.",), fillers="adjective"),
    PatternCase(_N, "{} < {} ({} < {} ({lemma:/show|demonstrate|present/} > {dependency:/nmod:within/} ({lemma:/limit.*/} "
                "> {} {lemma:/normal/})))",
                ("The size of the {x} presents within normal limits.",), fillers="organ"),
    PatternCase(_N, "({} > {} {}) > {dependency:/nmod:within/} {lemma:/limit.*/}",
                ("{X} within normal limits.",), fillers="anatomy"),
    PatternCase(_N, "{} < {} ({} < {dependency:/nsubj/} ({lemma:/limit.*/} > {} {lemma:/upper/} & > {dependency:/nmod:of/} "
                "{lemma:/normal/} & > {dependency:/case/} {lemma:/at|within/}))",
                ("The size of the {x} is at the upper limits of normal.",), fillers="organ"),
    PatternCase(_N, "{} < {} ({} < {dependency:/nsubj/} ({lemma:/limit.*/} > {dependency:/amod/} {lemma:/normal/} & > "
                "{dependency:/case/} {lemma:/at|within/}))",
                ("The size of the {x} is within normal limits.",), fillers="organ"),
    PatternCase(_N, "({lemma:/vascularity/} > {dependency:/amod/} {lemma:/pulmonary/}) > {dependency:/amod/} "
                "{lemma:/normal/}",
                note="applies to the word 'vascularity', which only the phrase 'cardiac silhouette and vascularity' "
                "covers, and never as 'normal pulmonary vascularity'"),
    PatternCase(_N, "{} < {dependency:/dobj|nsubj/} ({} > {dependency:/nmod:within/} ({lemma:/limit.*/} > {} "
                "{lemma:/normal/}))",
                ("The {x} remains within normal limits.",), fillers="organ"),
    PatternCase(_N, "{} > {dependency:/nmod:within/} ({lemma:/limit.*/} > {dependency:/amod/} {lemma:/normal/})",
                ("{X} is within normal limits.",), fillers="anatomy"),
    PatternCase(_N, "{} > {} ({lemma:/limit/} > {} {lemma:/normal/})",
                ("{X} within limits of normal.",), fillers="anatomy"),
    PatternCase(_N, "{} < {} ({lemma:/appear|remain/} > {} {lemma:/normal|unremarkable/})",
                ("The {x} appears normal.", "The {x} remains unremarkable."),
                fillers="organ"),
    PatternCase(_N, "{} > {} ({lemma:/remain|appear/} > {} ({lemma:/limit/} > {} {lemma:/normal/}))",
                ("The {x} appears within normal limits.",), fillers="organ"),
    PatternCase(_N, "{} <{dependency:/conj:negcc/} {}",
                ("{Y} rather than {x}.", "Small {y} rather than {x}."), y="positive",
                note="'X rather than Y': Y negative; X keeps its own cues"),
    PatternCase(_N, "{} <{dependency:/nmod:without/} {}", ("Clear lungs without {x}.", "Lungs are clear without {x}.")),
    PatternCase(_N, "{} <{dependency:/nmod:without|nmod:of/} {lemma:/clear|clearing/}=key",
                ("Interval clearing of {x}.", "The lungs are clear of {x}.", "Clearing of the {x}.")),
    PatternCase(_N, "{} <{dependency:/nmod:out/} {lemma:/rule/}=key", ("Rule out {x}.", "Evaluate to rule out {x}.")),
    PatternCase(_N, "{} <{dependency:/nmod:of/} {lemma:/history|free|disappearance|resolution|drainage|resolution|removal/}",
                ("History of {x}.", "Free of {x}.", "Disappearance of {x}.", "Resolution of {x}.",
                 "Drainage of the {x}.", "Interval resolution of the {x}.")),
    PatternCase(_N, "{} <{dependency:/nmod:of/} {lemma:/history|free|disappearance|resolution|drainage|resolution|removal/}",
                ("Removal of the {x}.", "Interval removal of the {x}."), fillers="device"),
    PatternCase(_N, "{} <{dependency:/nmod:for/} {lemma:/negative/}", ("Negative for {x}.", "Study is negative for {x}.")),
    PatternCase(_N, "{} <{} {lemma:/exclude/}", ("To exclude {x}.", "{X} is excluded.", "Evaluation to exclude {x}.")),
    PatternCase(_N, "{} <{dependency:/advmod|dep|conj:or/} {lemma:/no/}", ("No {x}, no {y}.",), y="negative",
                note="parse errors that put a mention under 'no'"),
    PatternCase(_N, "{} <{dependency:/nsubj/} ({lemma:/resolve/}=key >{dependency:/aux/} {})",
                ("{X} has resolved.", "The {x} has since resolved.", "The previously seen {x} has resolved.")),
    PatternCase(_N, "{} <{dependency:/nsubj/} ({lemma:/be/} >{} {lemma:/no/})", ("There is no {x}.", "There is no {x} seen.")),
    PatternCase(_N, "{} <{dependency:/nmod:of|nmod:for/} ({lemma:/evidence|finding/} <{dependency:/nmod:without/} {})",
                ("Lungs clear without evidence of {x}.",)),
    PatternCase(_N, "{} < {dependency:/nmod:of/} ({lemma:/development/} > {} {lemma:/without/})",
                ("Without development of {x}.", "Stable without development of {x}.")),
    PatternCase(_N, "{} < {dependency:/nmod:of/} ({lemma:/development/} > {} {lemma:/no/})", ("No development of {x}.",)),
    PatternCase(_N, "{} <{dependency:/nmod:of|nmod:for/} ({lemma:/evidence/} >{dependency:/neg/} {})",
                ("No evidence of {x}.", "There is no evidence for {x}.", "No radiographic evidence of {x}.")),
    PatternCase(_N, "{} <{dependency:/nmod:of|nmod:for/} ({lemma:/evidence|finding/} >{} {lemma:/without/})",
                ("Without evidence of {x}.", "Without findings of {x}.")),
    PatternCase(_N, "{} <{dependency:/nmod:of/} ({lemma:/focus/} >{dependency:/neg/} {})", ("No focus of {x}.",)),
    PatternCase(_N, "{} <{dependency:/nmod:of/} ({lemma:/focus/} >{} {lemma:/no/})", ("There is no focus of {x}.",)),
    PatternCase(_N, "{} <{dependency:/nmod:to/} ({lemma:/moderate/} >{dependency:/neg/} {})",
                ("No moderate to large {x}.",)),
    PatternCase(_N, "{} <{} ({lemma:/developing/} <{} ({lemma:/evidence/} <{dependency:/nmod:without/} {}))",
                ("Without evidence of developing {x}.",)),
    PatternCase(_N, "{} <{} ({lemma:/developing/} <{} ({lemma:/evidence/} >{} {lemma:/no/}))",
                ("No evidence of developing {x}.",)),
    PatternCase(_N, "{} <{dependency:/dobj/} ({} >{dependency:/nsubj/} {lemma:/no/})", ("No focal {x}.",)),
    PatternCase(_N, "{} <{dependency:/dobj|nsubjpass/} ({lemma:/demonstrate|visualize/} >{} {lemma:/previously/})",
                ("{X} was previously demonstrated.", "{X} was previously visualized.")),
    PatternCase(_N, "{} < {} ({lemma:/suggest|explain|diagnose/} < {} ({tag:/V.*/} > {} ({tag:/N.*/} > {} {lemma:/no/})))",
                ("There is no finding to suggest {x}.", "There is no abnormality to explain {x}.")),
    PatternCase(_N, "{} < {} ({lemma:/suggest|explain|diagnose/} < {} ({tag:/N.*/} > {} {lemma:/no/}))",
                ("No findings to suggest {x}.", "No abnormality to explain {x}.", "No findings to diagnose {x}.")),
    PatternCase(_N, "{} < {dependency:/nmod:of/} ({lemma:/area/} > {dependency:/compound/} {lemma:/no/})",
                ("No area of {x}.",)),
    PatternCase(_N, "{} < {dependency:/nsubjpass/} ({lemma:/enlarge/} > {dependency:/neg/} {})",
                ("The {x} is not enlarged.", "The {x} is not significantly enlarged."), fillers="organ"),
    PatternCase(_N, "{} < {dependency:/nmod:of/} ({lemma:/development/} > {dependency:/case/} {lemma:/without/})",
                ("Without development of new {x}.",),
                note="'without development of new X': the rule's word is 'development', not the mention, so 'new' "
                "does not stop it"),
    PatternCase(_N, "{} < {} {lemma:/remove/}",
                ("The {x} has been removed.", "{X} removed.", "The {x} was removed."),
                fillers="device"),
    PatternCase(_N, "{} > {} {lemma:/remove/}", ("{X} now removed.",), fillers="device"),
    PatternCase(_N, "{} < {dependency:/nsubjpass/} ({lemma:/see/} > {} ({} > {dependency:/neg/} {lemma:/no/}))",
                ("{X} is no longer seen.", "The {x} is no longer seen.")),
    PatternCase(_N, "{} < {dependency:/nsubjpass/} ({lemma:/see/} > {} {lemma:/no/})", ("{X} no longer seen.",)),
    PatternCase(_N, "{} < {} ({lemma:/see/} > {} ({} > {} ({lemma:/evidence/} > {} {lemma:/without/})))",
                ("Without evidence seen of {x}.",)),
    PatternCase(_N, "{} < {} ({lemma:/see/} > {} ({lemma:/evidence/} > {} {lemma:/without/}))",
                ("Without evidence seen for {x}.",)),
    PatternCase(_N, "{} < {} ({lemma:/appearance/} > {} {lemma:/normal|unremarkable/})",
                ("Normal appearance of the {x}.", "Unremarkable appearance of the {x}."), fillers="organ"),
    PatternCase(_N, "{} > {} {lemma:/normal|unremarkable/}", ("{X} normal.", "{X} unremarkable."), fillers="anatomy"),
    PatternCase(_N, "{} < {} {lemma:/normal|unremarkable/}", ("{X} is normal.", "{X} is unremarkable."),
                fillers="anatomy"),
    PatternCase(_N, "{} < {} {lemma:/clear/}", ("{X} has cleared.", "The {x} has cleared.")),
    PatternCase(_N, "{} > {} {lemma:/clear/}", ("Cleared {x}.",)),
    PatternCase(_N, "{} < {} ({lemma:/associate.*/} > {} ({lemma:/obvious/} > {dependency:/neg/} {}))",
                ("No obvious associated {x}.",)),
    PatternCase(_N, "{} > {dependency:/neg/} {} & > {} {lemma:/obvious/} & > {} {lemma:/associate.*/}",
                ("There is no obvious associated {x}.",)),
    PatternCase(_N, "{} > {} ({lemma:/resolution/} > {} {lemma:/interval/})",
                ("{X} with interval resolution.", "Left {x} with interval resolution.")),
    PatternCase(_N, "{} >{dependency:/neg/} {}", ("No {x}.", "No {x} is seen.", "No {x} or {y}.", "No {x}, {y} or other abnormality."),
                y="negative"),
    PatternCase(_N, "{} >{} {lemma:/no/}", ("No {x} identified.", "No {x} and no {y}."),
                y="negative"),
    PatternCase(_N, "{} >{dependency:/case/} {lemma:/without/}",
                ("Without {x}.", "Lungs clear without {x}.",
                 "Without {x} or {y}."), y="negative"),
    # ---- post_negation_uncertainty.txt -------------------------------------------------------------------------
    PatternCase(_POST, _HEART_LEMMAS + " > {dependency:/amod/} {lemma:/stable|unchanged/}",
                ("Stable {x}.", "Unchanged {x}."), fillers="anatomy"),
    PatternCase(_POST, _HEART_LEMMAS + " > {} ({lemma:/change/} > {dependency:/neg/} {})",
                ("{X} with no change.",), fillers="anatomy"),
    PatternCase(_POST, _HEART_LEMMAS + " < {dependency:/nsubj/} {lemma:/stable|unchanged/}",
                ("The {x} is stable.", "The {x} is unchanged.", "The {x} remains stable."), fillers="organ"),
    PatternCase(_POST, _HEART_LEMMAS + " < {} ({lemma:/change/} > {dependency:/neg/} {})",
                ("No change in the {x}.", "The {x} has not changed."), fillers="organ"),
    PatternCase(_POST, _HEART_LEMMAS + " < {} ({lemma:/similar/} > {dependency:/nmod:to/} {lemma:/prior/})",
                ("The {x} is similar to prior.",), fillers="organ"),
    PatternCase(_POST, _HEART_LEMMAS + " < {} ({lemma:/similar/} > {dependency:/nmod:to/} ({} >{} {lemma:/prior/}))",
                ("The {x} is similar to the prior study.",), fillers="organ"),
    PatternCase(_POST, _HEART_LEMMAS + " > {} ({lemma:/similar/} > {dependency:/nmod:to/} {lemma:/prior/})",
                ("{X} similar to prior.",), fillers="anatomy"),
    PatternCase(_POST, _HEART_LEMMAS + " > {} ({lemma:/similar/} > {dependency:/nmod:to/} ({} >{} {lemma:/prior/}))",
                ("{X} similar to the prior exam.",), fillers="anatomy"),
    PatternCase(_POST, _HEART_LEMMAS + " < {dependency:/nmod:of/} ({lemma:/appearance/} > {} {lemma:/stable/})",
                ("Stable appearance of the {x}.",), fillers="organ"),
    PatternCase(_POST, "{} < {} ({lemma:/excluded/} > {dependency:/neg/} {})",
                note="inert: the lemma of 'excluded' is 'exclude'; the pre-negation rules cover 'not excluded'"),
    PatternCase(_POST, "{} < {dependency:/nmod:for/} {lemma:/suspicious/}",
                ("Suspicious for {x}.", "Findings suspicious for {x}.")),
    PatternCase(_POST, "{} < {dependency:/dobj/} ({lemma:/represent/} > {dependency:/advmod/} {lemma:/possibly/})",
                ("This possibly represents {x}.",)),
    PatternCase(_POST, "{} > {dependency:/cc/} {lemma:/and.or/}", ("{X} and/or {y}.",), y="uncertain",
                note="CheXpert's loader rewrites 'and/or' to 'or', so the 'or' rules decide"),
    PatternCase(_POST, "{} < {dependency:/conj:and.or/} {}", ("{Y} and/or {x}.",), y="uncertain"),
    PatternCase(_POST, "{} > {} {lemma:/new/} & > {dependency:/neg/} {lemma:/no/}", ("No new {x} is identified.",)),
    PatternCase(_POST, "{} < {dependency:/dep/} ({} > {dependency:/acl:relcl/} ({lemma:/represent/} < {dependency:/aux/} "
                "{lemma:/may/}))",
                ("Finding which may represent {x}.",)),
    PatternCase(_POST, "{} < {dependency:/nmod:for/} {lemma:/worrisome/}", ("Worrisome for {x}.", "Findings worrisome for {x}.")),
    PatternCase(_POST, "{} < {dependency:/conj:versus/} {}", ("{Y} versus {x}.",), y="uncertain"),
    PatternCase(_POST, "{} > {dependency:/conj:versus/} {}", ("{X} versus {y}.", "Findings of {x} versus {y}."),
                y="uncertain"),
    PatternCase(_POST, "({lemma:/angle/} > {dependency:/nsubj/} {lemma:/costophrenic/}) > {dependency:/nmod:of/} "
                "{lemma:/blunt.*/}",
                note="applies to the word 'angle', which no mention phrase covers ('blunt' is one of the other "
                "findings of No Finding)"),
    PatternCase(_POST, "{} < {lemma:/nsubj/} ({} > {} ({lemma:/likely/} > {} {lemma:/less/}))",
                ("{X} is less likely.", "Less likely {x}.", "{Y}, less likely {x}."),
                y="positive",
                note="as written the rule tests an edge for 'lemma', which edges do not have, so the Stanford tool "
                "never fires it; its evident intent ('less likely X' is uncertain) is what is measured"),
    PatternCase(_POST, "{} < {dependency:/nmod:out/} {lemma:/cannot/}", ("Cannot rule out a small {x}.",)),
    PatternCase(_POST, "{} >{} {lemma:/possible|possibly|presumably|probable|questionable|suspect|suspected|suspicious/}",
                ("Possible {x}.", "Probable {x}.", "Questionable {x}.", "Suspected {x}.", "Presumably {x}.",
                 "Possibly {x}.", "Possible small {x}.", "Suspicious {x}.")),
    PatternCase(_POST, "{} >{} {lemma:/question/}", ("Question {x}.",)),
    PatternCase(_POST, "{} > {} {lemma:/may|might|would|could/}",
                ("This may be {x}.", "This would be {x}.", "This could be {x}.", "This might be {x}.")),
    PatternCase(_POST, "{} <{dependency:/nmod:of/} {lemma:/question|suggestion/}", ("Question of {x}.", "Suggestion of {x}.")),
    PatternCase(_POST, "{} <{dependency:/dobj/} {lemma:/suspect|favor|question|consider/}",
                ("Findings favor {x}.", "Consider {x}.", "We suspect {x}.", "Would favor {x}.")),
    PatternCase(_POST, "{} <{dependency:/nmod:for/} {lemma:/concern|suspicion/}", ("Concern for {x}.", "Suspicion for {x}.")),
    PatternCase(_POST, "{} <{dependency:/nsubjpass/} {lemma:/suspect/}", ("{X} is suspected.",)),
    PatternCase(_POST, "{} <{} {lemma:/possible/}", ("{X} is possible.",)),
    PatternCase(_POST, "{} <{dependency:/dobj/} {lemma:/suspect/}", ("The radiologist suspects {x}.",)),
    PatternCase(_POST, "{} >{dependency:/advmod/} {lemma:/suspect/}", ("Suspect {x}.",)),
    PatternCase(_POST, "{} <{dependency:/dep/} {lemma:/maybe/}", ("Maybe {x}.", "Maybe due to {x}.")),
    PatternCase(_POST, "{} <{dependency:/dobj/} ({lemma:/reflect|represent|indicate|include/} >{} "
                "{lemma:/may|could|would|might|possibly|can/})",
                ("May represent {x}.", "Could reflect {x}.", "This might indicate {x}.", "Findings may reflect {x}.")),
    PatternCase(_POST, "{} < {} ({lemma:/presence/} <{dependency:/dobj/} ({lemma:/reflect|represent|indicate|include/} >{} "
                "{lemma:/may|could|would|might|possibly|can/}))",
                ("May represent the presence of {x}.",)),
    PatternCase(_POST, "{} <{dependency:/nmod:to/} {lemma:/secondary/}", ("Findings secondary to {x}.",)),
    PatternCase(_POST, "{} <{dependency:/nmod:to/} ({lemma:/due/} >{} {lemma:/can|could|may|would|possibly/})",
                ("May be due to {x}.", "Could be due to {x}.", "Possibly due to {x}.")),
    PatternCase(_POST, "{} <{dependency:/nmod:to/} ({lemma:/relate/} >{} {lemma:/can|could|may|would|possibly/})",
                ("Could be related to {x}.", "May be related to {x}.")),
    PatternCase(_POST, "{} <{dependency:/nmod:with/} ({lemma:/compatible/} >{} {lemma:/be|could|may|would/})",
                ("May be compatible with {x}.", "Findings are compatible with {x}.")),
    PatternCase(_POST, "{} <{dependency:/dobj/} ({lemma:/left/} <{} {lemma:/question/})", ("Question left {x}.",)),
    PatternCase(_POST, "{} >{} {lemma:/left/} <{} {lemma:/question/}", ("Question of left {x}.",)),
    PatternCase(_POST, "{} <{dependency:/dobj/} ({lemma:/include/} >{} ({lemma:/diagnosis/} >{} {lemma:/differential/}))",
                ("Differential diagnosis includes {x}.",)),
    PatternCase(_POST, "{} <{} {lemma:/be/} >{} {lemma:/may|could|would/}", ("There may be {x}.", "There could be {x}.")),
    PatternCase(_POST, "{} <{dependency:/nsubj/} {lemma:/suspect/,tag:/VBN/}", ("{X} suspected.",)),
    PatternCase(_POST, "{} < {dependency:/nmod:of/} ({lemma:/symptom/} < {dependency:/nmod:for/} {lemma:/correlation/})",
                ("Correlation for symptoms of {x}.",)),
    PatternCase(_POST, "{lemma:/heart/} < {dependency:/compound/} ({lemma:/size/} > {} {lemma:/borderline/})",
                ("Borderline {x}.", "Borderline {x} is noted."), fillers="heart size"),
    PatternCase(_POST, "{} < {} ({lemma:/present/} > {dependency:/aux/} {lemma:/could|might|may|possibly|can/})",
                ("{X} could be present.", "{X} may be present.", "A small {x} might be present.")),
    PatternCase(_POST, "{} < {} ({lemma:/evaluate/} > {dependency:/advmod/} {lemma:/poorly/})", ("{X} is poorly evaluated.",)),
    PatternCase(_POST, "{} < {} ({lemma:/evaluate/} > {dependency:/advmod/} {lemma:/incompletely/})",
                ("{X} is incompletely evaluated.",)),
    PatternCase(_POST, "{} < {} ({lemma:/evaluate|visualize/} >{dependency:/neg/} {})",
                ("{X} is not well visualized.", "{X} is not well evaluated.", "{X} is not visualized.")),
    PatternCase(_POST, "{} > {} ({lemma:/evaluate|visualize/} > {dependency:/neg/} {})", ("{X}, not well visualized.",)),
    PatternCase(_POST, "{} < {} {lemma:/obscure/}", ("The {x} is obscured.", "The {x} is partially obscured."),
                fillers="organ"),
    PatternCase(_POST, "{} < {dependency:/nsubj/} ({lemma:/appear/} > {} {lemma:/could|may|might|can/})",
                ("The {x} may appear enlarged.", "The {x} might appear enlarged."), fillers="organ"),
    PatternCase(_POST, "{} < {dependency:/nmod:with/} ({lemma:/consistent/} > {} {lemma:/may|might|can|could/})",
                ("May be consistent with {x}.", "Findings could be consistent with {x}.")),
    PatternCase(_POST, "{} < {dependency:/nmod:for/} ({lemma:/correlate/} > {dependency:/advmod/} {lemma:/clinically/})",
                ("Correlate clinically for {x}.",)),
    PatternCase(_POST, "{} < {dependency:/nmod:of/} ({lemma:/evidence|sign|signs|symptoms|symptom/} < {dependency:/nmod:for/} "
                "({lemma:/correlate/} > {dependency:/advmod/} {lemma:/clinically/}))",
                ("Correlate clinically for evidence of {x}.", "Correlate clinically for signs of {x}.")),
    PatternCase(_POST, "{} < {} (({lemma:/see/} > {dependency:/neg/} {}) > {} {lemma:/clearly/})",
                ("{X} is not clearly seen.", "The {x} is not clearly seen.")),
    PatternCase(_POST, "{} > {} (({lemma:/see/} > {dependency:/neg/} {}) > {} {lemma:/clearly/})", ("{X} not clearly seen.",)),
    PatternCase(_POST, "{} < {} ({lemma:/reflect/} > {} {lemma:/possibly/})",
                ("Possibly reflecting {x}.", "Findings possibly reflecting {x}.")),
    PatternCase(_POST, "{} < {} ({lemma:/appreciate/} > {dependency:/neg/} {})",
                ("{X} was not appreciated.", "{X} is not appreciated.")),
    PatternCase(_POST, "{} < {} (({lemma:/have/} > {} {lemma:/may|might|could/}) > {} {lemma:/appearance/})",
                ("{X} may have this appearance.", "{X} could also have this appearance.")),
    PatternCase(_POST, "{lemma:/congestion/} > {} {lemma:/vascular/}", ("There is {x}.", "Mild {x}."), fillers="hedged"),
    PatternCase(_POST, "{lemma:/congestion/} > {} {lemma:/pulmonary/}", ("{X} is present.",), fillers="hedged"),
    PatternCase(_POST, "{lemma:/indistinctness/}", ("{X} is seen.",), fillers="hedged"),
    PatternCase(_POST, "{lemma:/prominence/} > {} {lemma:/vascular/}", ("Increased {x}.",), fillers="hedged"),
    PatternCase(_POST, "{} > {dependency:/conj:or/} {}", ("{X} or {y}.", "{X} or {y} is seen."), y="uncertain"),
    PatternCase(_POST, "{} < {dependency:/conj:or/} {}", ("{Y} or {x}.", "Small {y} or {x}."), y="uncertain"),
)
"""Every rule line of CheXpert's three pattern files with the sentences that realise it (see the module docstring)."""

POSITIVE_CONTROLS: tuple[str, ...] = (
    "There is {x}.", "{X} is present.", "{X} is seen.", "Small {x}.", "{X} is noted.", "Stable {x}.",
    "No change in {x}.", "No significant change in the {x}.", "Increased {x}.", "Left {x} is again seen.",
)
"""Sentences with a finding and no rule (no cue, or a cue that does not reach it): CheXpert calls them positive."""


def normalise_pattern(line: str) -> str:
    """A rule line with its whitespace removed, to compare the table with the files."""
    return "".join(line.split())


__all__ = [
    "DIRECTION",
    "FILLERS",
    "NEGATION",
    "PATTERN_CASES",
    "POSITIVE_CONTROLS",
    "POST_NEGATION",
    "PRE_NEGATION",
    "PatternCase",
    "RULE_FILES",
    "normalise_pattern",
]
