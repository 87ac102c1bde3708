"""Validation studies of the product's rule-based CheXpert labeler (`xray_report.evaluation.chexpert_labeler`):

* `chexpert_conformance`: agreement with the Stanford CheXpert labeler's own phrase lists and negation /
  uncertainty rules (`python -m research.labeler.chexpert_conformance [--chexpert-labeler CHECKOUT]`, results in
  `research/results/labeler_conformance.json`), with its rule table `chexpert_patterns` and the held-out report
  sentences `chexpert_held_out`;
* `validate_labeler`: agreement with the IU X-ray MeSH tags, next to a keyword baseline without negation or
  uncertainty (`python -m research.labeler.validate_labeler indiana_reports.csv --output-dir DIR`).

The figures are quoted in docs/evaluation.md.
"""
