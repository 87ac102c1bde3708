"""``python -m xray_report.inference``: see :mod:`xray_report.inference.cli`."""

import sys

from .cli import main

sys.exit(main())
