"""A batch run, stage by stage: processes and device, studies, model, outputs, reports.

`run_batch(job)` is what ``xray-report`` does once its arguments are checked; each stage is owned by one module:

1. `processes.start_processes`: this process's place among the launched ones, and its device;
2. `studies.discover_studies`: the inputs as studies (and per-study input errors);
3. `loading.load_reporter`: the model checked, loaded and put in its precision (`--fast`'s choice made here);
4. `outputs.BatchOutputs`: the output opened and locked, finished studies skipped, the run put on record;
5. `generation.generate_reports`: this process's studies, batch by batch, written as they come;
6. `outputs.BatchOutputs.finish`: shards merged and every process's counts gathered; the main process then writes
   the summary (`outputs.BatchOutputs.write_summary`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

from .generation import generate_reports
from .loading import load_reporter
from .notice import RESEARCH_NOTICE
from .outputs import BatchOutputs
from .processes import start_processes
from .settings import BatchJob
from .studies import discover_studies

logger = logging.getLogger("xray_report")


@dataclass(frozen=True)
class BatchResult:
    """What a batch run did.

    Attributes:
        studies_found, input_errors: the studies and the input errors discovery found (every process finds all).
        resumed: the studies found that were already in the output.
        written, failed: the reports written and the studies that failed (the main process: all processes together;
            another process: its own share).
        rows_before: the studies the output (and its shards) held before this run, whichever inputs they came from.
        is_main: this is the main process (the only one that writes the summary).
    """

    studies_found: int
    resumed: int
    written: int
    failed: int
    input_errors: int
    rows_before: int = 0
    is_main: bool = True


def run_batch(job: BatchJob) -> BatchResult:
    """Discovers the studies, skips finished ones, generates this process's share batch by batch and appends the
    rows; the main process then merges the other processes' shards and writes the summary.

    Raises:
        StudyInputError, ValueError: a bad input, model or setting (nothing written).
        OutputError: the output cannot be written.
    """
    started = time.perf_counter()
    group, device = start_processes(job.settings.device)
    if group.is_main:
        logger.warning(RESEARCH_NOTICE)
    studies, input_errors = discover_studies(job.inputs, projections=job.settings.projections, exclude=job.own_files)
    reporter = load_reporter(job.settings, device, fast=job.fast)  # a bad model or setting: before anything is written
    precision = reporter.precision
    settings = dataclasses.replace(job.settings, dtype=precision.dtype, quantize=precision.quantize,
                                   fast=precision.fast)
    if precision.fast and group.is_main:
        logger.info("%s", precision.fast)
    logger.info("sections: %s splitter; precision %s%s", reporter.splitter.method, precision.dtype,
                f" + {precision.quantize} decoder" if precision.quantize else "")
    with BatchOutputs(job.output, job.fmt, job.errors, group, inputs=job.inputs) as outputs:
        todo = outputs.claim(studies, input_errors, reporter.model_facts, settings)
        for rows, errors in generate_reports(reporter.pipe, todo, reporter.splitter, settings,
                                             progress=job.progress and group.is_main):
            outputs.write(rows, errors)
        per_process = outputs.finish()
        if not group.is_main:
            return BatchResult(len(studies), outputs.resumed, outputs.written, outputs.failed, len(input_errors),
                               outputs.rows_before, is_main=False)
        result = BatchResult(len(studies), outputs.resumed, sum(p["written"] for p in per_process),
                             sum(p["failed"] for p in per_process), len(input_errors), outputs.rows_before)
        outputs.write_summary({"finished": True, "studies_found": result.studies_found, "resumed": result.resumed,
                               "written": result.written, "failed": result.failed,
                               "input_errors": result.input_errors, "processes": group.count,
                               "by_process": per_process}, started=started)
    return result


__all__ = ["BatchResult", "run_batch"]
