"""The report dashboard as a Hugging Face Space (Gradio SDK), on a model from the Hub.

Research use only: the dashboard is a research tool, not a medical device; every page says so.

Settings (the Space's variables, or the environment when run elsewhere):

* ``XRAY_REPORT_MODEL``: the Hub model id (or a local folder) to serve; ``--model`` overrides it.
* ``PORT``: the port (default 7860, the one a Space serves).

Inside a Space (``SPACE_ID`` is set there) the app binds ``0.0.0.0`` as the Space's proxy requires; anywhere else it
binds ``127.0.0.1``, this machine only. Extra arguments are passed to the dashboard (``python -m xray_report.demo.app --help``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

MODEL_VARIABLE = "XRAY_REPORT_MODEL"


def dashboard_arguments(argv: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """The `xray_report.demo.app` arguments: model from `--model` or `XRAY_REPORT_MODEL`, host and port as the place requires."""
    arguments = list(argv)
    if "--model" not in arguments:
        model = environ.get(MODEL_VARIABLE, "").strip()
        if not model:
            raise SystemExit(f"No model to serve: set the Space variable {MODEL_VARIABLE} to a Hub model id "
                             "(or pass --model).")
        arguments += ["--model", model]
    if "--host" not in arguments:
        arguments += ["--host", "0.0.0.0" if environ.get("SPACE_ID") else "127.0.0.1"]
    if "--port" not in arguments:
        arguments += ["--port", environ.get("PORT", "7860")]
    return arguments


if __name__ == "__main__":
    from xray_report.demo.app import main

    sys.exit(main(dashboard_arguments(sys.argv[1:], os.environ)))
