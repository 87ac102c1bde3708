"""Command line: write a synthetic study set in IU X-ray's Kaggle layout.

    python -m xray_report.synthetic.make_studies OUT_DIR --num-studies 600 --seed 0

Build it like the real collection: `dataset_builder.load_iu_xray(OUT_DIR)`.
"""

from __future__ import annotations

import argparse
import collections
import sys
from collections.abc import Sequence
from pathlib import Path

from .studies import write_kaggle_studies


def main(argv: Sequence[str] | None = None) -> int:
    """Parses the arguments, writes the studies and prints the finding counts."""
    parser = argparse.ArgumentParser(prog="python -m xray_report.synthetic.make_studies", description=__doc__.splitlines()[0])
    parser.add_argument("output_dir", type=Path, help="folder to write (created if needed)")
    parser.add_argument("--num-studies", type=int, default=600, help="number of two-view studies (default 600)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--image-size", type=int, default=256, help="frontal/lateral height in pixels (default 256)")
    args = parser.parse_args(argv)
    size = args.image_size
    findings = write_kaggle_studies(
        args.output_dir, args.num_studies, args.seed, frontal_size=(size, size * 15 // 16), lateral_size=(size, size)
    )
    counts = collections.Counter()
    for study in findings:
        counts.update(name for name, present in study.observations().items() if present)
    print(f"wrote {len(findings)} studies to {args.output_dir}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
