"""``python -m xray_report.evaluation``: see :mod:`xray_report.evaluation.cli`."""

import sys

from .cli import main

sys.exit(main())
