"""The semi-real IU X-ray benchmark: the real reports with phantom images rendered from their findings
(`phantoms`), what it scores besides NLG and CE (`scores`) and its oracle rows (`oracles`). The benchmark itself is
`python -m research.bench.bench_semireal`; what it taught is in research/semireal/README.md."""

from .oracles import best_report_per_content, choose_kept_sentences, constant_with_finding_sentences
from .phantoms import (
    EXTRA_FINDING_RULES,
    EXTRA_FINDINGS,
    LEVELS,
    LUNG_FINDING_KINDS,
    RENDERED_OBSERVATIONS,
    SEMIREAL_LABELS_CSV,
    SIDES,
    LungFinding,
    RenderedFindings,
    finding_labels,
    findings_from_report,
    read_semireal_truth,
    render_semireal_frontal,
    render_semireal_lateral,
    write_semireal_studies,
)
from .scores import (
    CHANCE_ROUNDS,
    chance_micro_f1,
    extra_finding_scores,
    image_content_ceiling,
    longest_repeated_ngram,
    reports_per_content,
    semireal_scores,
)

__all__ = [
    "CHANCE_ROUNDS",
    "EXTRA_FINDINGS",
    "EXTRA_FINDING_RULES",
    "LEVELS",
    "LUNG_FINDING_KINDS",
    "LungFinding",
    "RENDERED_OBSERVATIONS",
    "RenderedFindings",
    "SEMIREAL_LABELS_CSV",
    "SIDES",
    "best_report_per_content",
    "chance_micro_f1",
    "choose_kept_sentences",
    "constant_with_finding_sentences",
    "extra_finding_scores",
    "finding_labels",
    "findings_from_report",
    "image_content_ceiling",
    "longest_repeated_ngram",
    "read_semireal_truth",
    "render_semireal_frontal",
    "render_semireal_lateral",
    "reports_per_content",
    "semireal_scores",
    "write_semireal_studies",
]
