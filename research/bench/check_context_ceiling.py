"""How much the indication could tell about the findings the semi-real phantoms do not draw.

Writes context_ceiling.json.
The clinical-context benchmark (`bench_semireal_context.py`) asks whether a model states the findings its images do
not show better when it reads the study's indication. That can only happen where the indication names such a
finding. This counts, over the real IU X-ray reports with an indication, the reports that state (labeler: positive)
a CheXpert finding the phantoms do not draw, and among them those whose indication the labeler reads as naming one
of those findings: the most context could add on this benchmark.

    python -m research.bench.check_context_ceiling
"""

from __future__ import annotations

import argparse
import csv
import sys

from .bench_semireal import SHARED
from .common import add_output_argument, today, write_results


def positive_findings(text: str) -> set[str]:
    """The CheXpert findings (No Finding aside) the project's labeler reads as positive in `text`."""
    from xray_report.evaluation import Label, label_report

    return {name for name, label in label_report(text).items() if label == Label.POSITIVE and name != "No Finding"}


def main(argv: list[str] | None = None) -> int:
    from research.semireal.phantoms import RENDERED_OBSERVATIONS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_output_argument(parser, "context_ceiling.json")
    args = parser.parse_args(argv)
    reports = SHARED / "kaggle" / "indiana_reports.csv"
    if not reports.is_file():
        print(f"skipped: {reports} is absent (the real IU X-ray reports)")
        return 0
    with open(reports, newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if (row.get("indication") or "").strip()]
    stating, named = 0, 0
    for row in rows:
        report = " ".join(part for part in (row.get("findings") or "", row.get("impression") or "") if part.strip())
        not_drawn = positive_findings(report) - set(RENDERED_OBSERVATIONS)
        if not_drawn:
            stating += 1
            named += bool(not_drawn & positive_findings(row["indication"]))
    results = {"what": __doc__.splitlines()[0], "date": today(), "reports": "../shared/data/iu_xray/kaggle/indiana_reports.csv",
               "reports_with_indication": len(rows), "stating_a_finding_not_drawn": stating,
               "indication_names_one_of_them": named, "drawn_findings": list(RENDERED_OBSERVATIONS)}
    write_results(args.output, results)
    print(f"{len(rows)} reports with an indication; {stating} state a finding the phantoms do not draw; "
          f"the indication names one of them in {named}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
