"""Generating reports through a loaded model's pipeline (the one image → report path).

Every caller (the batch CLI, the dashboard, the quickstart) reads a study's images once with
`load_study_images` (an unreadable file becomes a `StudyError`, never an exception that stops a batch), then hands
the loaded images to `generate_for_studies`, which calls the model's `XrayReportPipeline`. A batch run goes through
`generate_reports`: batches read ahead, generated, structured and (optionally) grounded, one output row per study.
Loading the model is `xray_report.inference.loading`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from modeling.pipeline_xray_report import XrayReportPipeline
from processing import XrayImageError
from processing.image_loading import DEFAULT_IMAGE_LIMITS, ImageLimits, read_xray_image
from xray_report.evaluation.sections import SectionSplitter

from .heatmaps import save_heatmaps, study_heatmaps
from .settings import RunSettings
from .structured import report_row, structure_report
from .studies import Study, StudyError

logger = logging.getLogger(__name__)


@dataclass
class LoadedStudy:
    """A study whose images were read: 8-bit grayscale PIL images (the grayscale policy), ready for the pipeline."""

    study: Study
    views: list[Image.Image | None]
    prior: Image.Image | None = None
    notes: list[str] = field(default_factory=list)

    def as_input(self) -> dict[str, Any]:
        """The study dict the pipeline takes."""
        return {"frontal": self.views[0], "lateral": self.views[1], "previous": self.prior,
                "indication": self.study.indication}


def load_study_images(
    study: Study, limits: ImageLimits = DEFAULT_IMAGE_LIMITS, image_processor: Any = None
) -> LoadedStudy | StudyError:
    """Reads a study's images once within `limits`; any unreadable file becomes a `StudyError` naming the file and
    the reason. The loaded study's notes are the study's own, then what reading its images did (an EXIF rotation).

    Args:
        image_processor: the model's image processor; each image is shrunk at once exactly as it would shrink it
            (`BioViLTImageProcessor.resize_for_model`), so a batch of large images holds little memory and the model
            sees the same pixels.
    """
    def read(path: Path | None) -> Any:
        if path is None:
            return None
        image = read_xray_image(path, limits)
        if image_processor is None:
            return image
        return dataclasses.replace(image, image=image_processor.resize_for_model(image.image))

    try:
        frontal, lateral, prior = read(study.frontal), read(study.lateral), read(study.prior)
    except XrayImageError as error:
        return StudyError(study.study_id, study.source, str(error))
    except Exception as error:  # a decoder bug or an exotic file must not stop the other studies
        return StudyError(study.study_id, study.source, f"{type(error).__name__} while reading images: {error}")
    read = [image for image in (frontal, lateral, prior) if image is not None]
    notes = [*study.notes, *(note for image in read for note in image.notes)]
    return LoadedStudy(study, [frontal.image, lateral.image if lateral else None], prior.image if prior else None,
                       notes)


def generate_for_studies(
    pipe: XrayReportPipeline,
    studies: Sequence[LoadedStudy],
    batch_size: int = 8,
    heatmaps: bool = False,
    **generation_kwargs: Any,
) -> list[dict[str, Any]]:
    """Reports for loaded studies, in order: one pipeline call, `batch_size` studies per `generate` call.

    Returns:
        One pipeline output per study (see `modeling.pipeline_xray_report`), with the study's own notes added.
    """
    if not studies:
        return []
    outputs = [result[0] for result in pipe([item.as_input() for item in studies], batch_size=batch_size,
                                            return_heatmaps=heatmaps, **generation_kwargs)]
    if len(outputs) != len(studies):  # a pipeline bug: never pair reports with the wrong studies
        raise RuntimeError(f"the pipeline returned {len(outputs)} reports for {len(studies)} studies")
    for item, output in zip(studies, outputs):
        output["notes"] = item.notes + output["notes"]
    return outputs


@dataclass
class ReadBatch:
    """A batch of studies whose images were read (`read_batch`): the loaded studies, the studies whose images could
    not be read, and how long the caller waited for them."""

    studies: list[Study]
    loaded: list[LoadedStudy]
    errors: list[StudyError]
    wait_seconds: float = 0.0
    """Seconds the batch loop waited for these images: the whole reading time when read in turn, only what was left
    of it when read ahead (`read_ahead`)."""

    def __len__(self) -> int:
        return len(self.studies)


def read_batch(batch: Sequence[Study], limits: ImageLimits = DEFAULT_IMAGE_LIMITS,
               image_processor: Any = None) -> ReadBatch:
    """Reads the images of a batch's studies (`load_study_images`: each image once, shrunk at once as the model's
    image processor would); a study whose images cannot be read becomes an error."""
    started = time.perf_counter()
    loaded, errors = [], []
    for study in batch:
        result = load_study_images(study, limits, image_processor)
        (errors if isinstance(result, StudyError) else loaded).append(result)
    return ReadBatch(list(batch), loaded, errors, time.perf_counter() - started)


def read_ahead(batches: Iterable[Sequence[Study]], limits: ImageLimits = DEFAULT_IMAGE_LIMITS,
               image_processor: Any = None) -> Iterator[ReadBatch]:
    """`read_batch` of each batch in turn, the next batch read by a worker thread while the caller generates the
    current one (image decoding and resizing release the GIL, so they overlap the model). At most two batches of
    images are held at once."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="xray-read-ahead") as pool:
        remaining = iter(batches)
        pending: deque[Future[ReadBatch]] = deque()

        def submit_next() -> None:
            batch = next(remaining, None)
            if batch is not None:
                pending.append(pool.submit(read_batch, batch, limits, image_processor))

        submit_next()
        try:
            while pending:
                future = pending.popleft()
                submit_next()  # the worker reads the next batch while this one is generated
                waited = time.perf_counter()
                read = future.result()
                read.wait_seconds = time.perf_counter() - waited
                yield read
        finally:
            for future in pending:
                future.cancel()


def generate_reports(
    pipe: XrayReportPipeline,
    studies: Sequence[Study],
    splitter: SectionSplitter,
    settings: RunSettings,
    progress: bool = False,
) -> Iterator[tuple[list[dict[str, Any]], list[StudyError]]]:
    """The output rows and errors of `studies`, batch by batch (`settings.batch_size` studies per `generate` call),
    the next batch's images read while the current one is generated (`read_ahead`).

    Args:
        settings: the run's batch size, image limits, generation settings, heatmaps folder and prior-claim removal.
        progress: show a progress bar counting studies.
    """
    limits = ImageLimits(settings.max_image_pixels, settings.max_aspect_ratio)
    allow_pil_images_up_to(limits.max_pixels)
    batches = (list(studies[start : start + settings.batch_size])
               for start in range(0, len(studies), settings.batch_size))
    with closing(read_ahead(batches, limits, pipe.processor.image_processor)) as reads:
        for read in progress_bar(reads, total_studies=len(studies), disabled=not progress):
            yield process_batch(pipe, read.studies, splitter, settings, limits, read=read)


def allow_pil_images_up_to(max_pixels: int) -> None:
    """PIL refuses images over its own decompression-bomb threshold whatever the run's limit; the run's limit, checked
    from the header before decoding, is the one that applies (raised, never lowered, for this process)."""
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels


def progress_bar(batches: Iterable[Any], total_studies: int, disabled: bool) -> Iterator[Any]:
    """`batches` as they come, with a progress bar (stderr) that counts their studies."""
    from tqdm.auto import tqdm

    with tqdm(total=total_studies, unit="study", disable=disabled, desc="reports") as bar:
        for batch in batches:
            yield batch
            bar.update(len(batch))


def process_batch(
    pipe: XrayReportPipeline,
    batch: Sequence[Study],
    splitter: SectionSplitter,
    settings: RunSettings,
    limits: ImageLimits = DEFAULT_IMAGE_LIMITS,
    read: ReadBatch | None = None,
) -> tuple[list[dict[str, Any]], list[StudyError]]:
    """Loads (each image once, shrunk at once as the model's image processor would), generates (one `generate`
    call), structures and optionally grounds a batch.

    A study whose images cannot be read becomes an error and the others go on. When the batch's generate call fails,
    its studies are generated one by one, so that only a study that fails alone becomes an error.

    Args:
        read: the batch's images already read (`read_ahead`); read here when None. A row's `seconds_per_study` is
            the batch's time in the loop per study: the wait for its images, generating, structuring, heatmaps.
    """
    started = time.perf_counter()
    if read is None:
        read = read_batch(batch, limits, pipe.processor.image_processor)
        started = time.perf_counter()
    started -= read.wait_seconds
    loaded, errors = list(read.loaded), list(read.errors)
    if not loaded:
        return [], errors
    kwargs = {**_generation_kwargs(settings), "image_limits": limits}
    try:
        outputs = generate_for_studies(pipe, loaded, batch_size=len(loaded), heatmaps=settings.heatmaps is not None,
                                       **kwargs)
    except Exception as error:  # a failure of the batch: each study alone, so that one bad study fails alone
        logger.warning("a batch of %d studies failed (%s: %s); generating them one by one", len(loaded),
                       type(error).__name__, error)
        outputs, kept = [], []
        for item in loaded:
            try:
                outputs += generate_for_studies(pipe, [item], batch_size=1, heatmaps=settings.heatmaps is not None,
                                                **kwargs)
                kept.append(item)
            except Exception as study_error:
                errors.append(StudyError(item.study.study_id, item.study.source,
                                         f"generation failed: {type(study_error).__name__}: {study_error}"))
        loaded = kept
        if not loaded:
            return [], errors
    seconds = (time.perf_counter() - started) / len(loaded)
    rows = []
    for item, output in zip(loaded, outputs):
        heatmap_folder = ""
        if settings.heatmaps is not None:
            heatmap_folder, heatmap_errors = _save_study_heatmaps(item, output, pipe.processor,
                                                                  Path(settings.heatmaps))
            errors += heatmap_errors
        structured = structure_report(output["generated_text"], output["has_prior"], settings.remove_prior_claims,
                                      splitter)
        rows.append(report_row(item.study, output, structured, heatmap_folder, seconds))
    return rows, errors


def _save_study_heatmaps(item: Any, output: dict[str, Any], processor: Any, folder: Path) -> tuple[str, list[StudyError]]:
    """Heatmap PNGs of one loaded study, drawn on its own images (their folder); a failure is recorded without
    losing its report."""
    study = item.study
    try:
        maps = study_heatmaps(output, views=item.views, processor=processor)
        return str(save_heatmaps(maps, folder, study.study_id)), []
    except Exception as error:
        logger.exception("heatmaps failed")
        return "", [StudyError(study.study_id, study.source, f"heatmaps failed (report kept): {error}")]


def _generation_kwargs(settings: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if settings.num_beams is not None:
        kwargs["num_beams"] = settings.num_beams
    if settings.max_new_tokens is not None:
        kwargs["max_new_tokens"] = settings.max_new_tokens
    return kwargs


__all__ = [
    "LoadedStudy",
    "ReadBatch",
    "generate_for_studies",
    "generate_reports",
    "load_study_images",
    "process_batch",
    "progress_bar",
    "read_ahead",
    "read_batch",
]
