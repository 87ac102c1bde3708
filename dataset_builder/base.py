"""Shared machinery of the report dataset builders: options, drop accounting,
splits, image encoding in ``_generate_examples`` and the stored counts."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

import datasets

from .images import ImageReadError, encode_image
from .records import StudyRecord
from .splits import SPLIT_NAMES, assign_splits, validate_ratios
from .stats import STATS_FILE_NAME, DropReason, PreparationError, PreparationStats
from .text import MaskPolicy, ReportSections, apply_mask_policy, compose_report, normalize_whitespace, r2gen_normalize

__all__ = ["PATH_OPTIONS", "ReportDatasetConfig", "ReportDatasetBuilder", "ReadResult", "report_features"]

logger = logging.getLogger(__name__)

PATH_OPTIONS = ("data_dir", "split_file", "image_dir", "projections_file", "reports_dir", "metadata_file")
"""Builder options that are paths (made absolute by the builder; part of its cache fingerprint)."""
_HAS_WORD = re.compile(r"\w")


def report_features(extra: Optional[dict[str, Any]] = None) -> datasets.Features:
    """The features every builder writes (IU X-ray schema), plus ``extra``."""
    string = datasets.Value("string")
    features = {
        "study_id": string,
        "frontal": datasets.Image(),
        "lateral": datasets.Image(),
        "findings": string,
        "impression": string,
        "report": string,
        "report_normalized": string,
        "indication": string,
        "comparison": string,
        "mesh": datasets.List(string),
        "problems": datasets.List(string),
        "image_files": datasets.List(string),
    }
    features.update(extra or {})
    return datasets.Features(features)


@dataclass
class ReportDatasetConfig(datasets.BuilderConfig):
    """Options shared by every image-report builder (see docs/datasets.md); each field's ``help`` says what it does.

    These fields and their defaults are the one definition of the builders' options: ``load_report_dataset``
    accepts them by name and ``train_hf.py``'s data options are derived from them.
    """

    report_sections: str = field(
        default=ReportSections.FINDINGS_IMPRESSION.value,
        metadata={"help": "Target text: findings_impression, findings or impression."})
    mask_policy: str = field(
        default=MaskPolicy.KEEP.value,
        metadata={"help": "keep, drop or replace the \"XXXX\" de-identification mask."})
    mask_replacement: str = field(default="<deid>", metadata={"help": "Replacement token of mask_policy replace."})
    image_short_side: int = field(
        default=512, metadata={"help": "Stored images are shrunk to this short side; 0 keeps the size."})
    grayscale: bool = field(default=True, metadata={"help": "Store 8-bit grayscale PNGs."})
    strict: bool = field(
        default=False, metadata={"help": "Raise instead of dropping or degrading any study."})
    seed: int = field(default=1234, metadata={"help": "Seed of the split when no official split is given."})
    split_ratios: tuple[float, float, float] = field(
        default=(0.7, 0.1, 0.2), metadata={"help": "Train/validation/test fractions of the seeded split."})
    split_file: Optional[str] = field(
        default=None, metadata={"help": "Official split file applied to the layout (IU X-ray: R2Gen's "
                                        "annotation.json; MIMIC-CXR: its split CSV)."})
    image_dir: Optional[str] = field(
        default=None, metadata={"help": "Folder holding the images, when not where the layout expects them."})

    def __post_init__(self) -> None:
        super().__post_init__()
        self.validate()

    def validate(self) -> None:
        """Normalise and check the options.

        Raises:
            ValueError: An option has an impossible value; the message names it.
        """
        try:
            self.report_sections = ReportSections(self.report_sections).value
        except ValueError as err:
            raise ValueError(f"report_sections must be one of {[s.value for s in ReportSections]}, "
                             f"got {self.report_sections!r}") from err
        try:
            self.mask_policy = MaskPolicy(self.mask_policy).value
        except ValueError as err:
            raise ValueError(f"mask_policy must be one of {[p.value for p in MaskPolicy]}, "
                             f"got {self.mask_policy!r}") from err
        if self.mask_policy == MaskPolicy.REPLACE.value and not self.mask_replacement:
            raise ValueError("mask_policy='replace' needs a non-empty mask_replacement")
        if self.image_short_side is None:
            self.image_short_side = 0
        if isinstance(self.image_short_side, bool) or not isinstance(self.image_short_side, int) \
                or self.image_short_side < 0:
            raise ValueError(f"image_short_side must be a non-negative int (0 = keep size), got {self.image_short_side!r}")
        self.split_ratios = validate_ratios(self.split_ratios)
        if self.split_file is not None and not Path(self.split_file).is_file():
            raise ValueError(f"split_file {self.split_file!r} does not exist")
        if self.image_dir is not None and not Path(self.image_dir).is_dir():
            raise ValueError(f"image_dir {self.image_dir!r} is not a directory")


@dataclass
class ReadResult:
    """What a layout reader hands to the builder.

    Attributes:
        layout: Layout name (stored in the counts).
        studies: Every study found, in a stable order.
        official_split: True when ``StudyRecord.split`` comes from the collection or a split
            file; studies with ``split=None`` are then counted ``not_in_split_file``.
        split_file_unmatched: Ids in the split file that match no study.
        orphan_images: Image rows/files that belong to no study.
    """

    layout: str
    studies: list[StudyRecord]
    official_split: bool = False
    split_file_unmatched: int = 0
    orphan_images: int = 0


def _tree_fingerprint(paths: list[str], exclude: Optional[str] = None) -> str:
    """Hash of file names, sizes and mtimes under ``paths`` plus this package's code.

    Used as the builder ``hash`` so a changed input folder or builder code never
    reuses a stale cache. ``exclude`` (the cache dir, if inside an input folder) is skipped.
    """
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for source in sorted(package.glob("*.py")):
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    for root in sorted(set(paths)):
        if os.path.isfile(root):
            stat = os.stat(root)
            digest.update(f"{root}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if os.path.join(dirpath, d) != exclude)
            for name in sorted(filenames):
                try:
                    stat = os.stat(os.path.join(dirpath, name))
                except OSError:
                    continue
                digest.update(f"{os.path.relpath(os.path.join(dirpath, name), root)}|{stat.st_size}|"
                              f"{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _find_preparation_error(err: BaseException) -> Optional[PreparationError]:
    """The strict-mode error inside datasets' wrapper (a worker's shows up as traceback text)."""
    marker = f"{PreparationError.__module__}.{PreparationError.__name__}: "
    cause: Optional[BaseException] = err
    while cause is not None:
        if isinstance(cause, PreparationError):
            return cause
        text = str(cause)
        if marker in text:
            return PreparationError(text.split(marker, 1)[1].strip().splitlines()[0])
        cause = cause.__cause__ or cause.__context__
    return None


class ReportDatasetBuilder(datasets.GeneratorBasedBuilder):
    """Base class: subclasses implement :meth:`_read` (and may extend the features)."""

    BUILDER_CONFIG_CLASS = ReportDatasetConfig
    VERSION = datasets.Version("1.0.0")
    EXTRA_FEATURES: dict[str, Any] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        for key in PATH_OPTIONS:
            if kwargs.get(key):
                kwargs[key] = os.path.abspath(os.path.expanduser(str(kwargs[key])))
        if kwargs.get("hash") is None:
            cache = os.path.abspath(os.path.expanduser(str(kwargs["cache_dir"]))) if kwargs.get("cache_dir") else None
            kwargs["hash"] = _tree_fingerprint([kwargs[k] for k in PATH_OPTIONS if kwargs.get(k)], exclude=cache)
        super().__init__(*args, **kwargs)
        self.config.validate()
        if not self.config.data_dir:
            raise ValueError(f"{type(self).__name__} needs data_dir (the folder holding the data)")
        if not Path(self.config.data_dir).is_dir():
            raise ValueError(f"data_dir {self.config.data_dir!r} is not a directory")
        self._stats: Optional[PreparationStats] = None

    # --- to implement -----------------------------------------------------
    def _read(self) -> ReadResult:
        """Read the input layout into studies (no image decoding)."""
        raise NotImplementedError

    # --- datasets API -----------------------------------------------------
    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(features=report_features(self.EXTRA_FEATURES))

    def _split_generators(self, dl_manager: Any) -> list[datasets.SplitGenerator]:
        result = self._read()
        stats = PreparationStats(layout=result.layout, studies_seen=len(result.studies),
                                 split_file_unmatched=result.split_file_unmatched)
        stats.images["orphan"] = result.orphan_images
        stats.options = self._options()
        splits = self._split_of(result)
        jobs: dict[str, list[dict]] = {name: [] for name in SPLIT_NAMES}
        for study in result.studies:
            stats.images["listed"] += len(study.image_files)
            stats.images["missing"] += len(study.missing_files)
            job, reason = self._make_job(study, splits.get(study.study_id))
            if reason is not None:
                stats.record(reason, study.study_id)
                continue
            if job["lateral_path"] is None and study.lateral_files:
                stats.record(DropReason.LATERAL_IMAGE_MISSING, study.study_id, degraded=True)
            jobs[splits[study.study_id]].append(job)
        stats.images["present"] = stats.images["listed"] - stats.images["missing"]
        self._stats = stats
        self._raise_if_strict(stats)
        issues_dir = os.path.join(self._output_dir, "_issues")
        return [datasets.SplitGenerator(name=name, gen_kwargs={"jobs": jobs[name], "issues_dir": issues_dir})
                for name in SPLIT_NAMES]

    def _generate_examples(self, jobs: list[dict], issues_dir: str) -> Iterator[tuple[str, dict]]:
        issues: list[dict[str, str]] = []
        try:
            for job in jobs:
                example = dict(job["example"])
                example["frontal"] = self._encode(job["frontal_path"], job, DropReason.FRONTAL_IMAGE_UNREADABLE, issues)
                if example["frontal"] is None:
                    continue
                example["lateral"] = self._encode(job["lateral_path"], job, DropReason.LATERAL_IMAGE_UNREADABLE, issues)
                if "previous_frontal" in job:
                    example["previous_frontal"] = self._encode(
                        job["previous_frontal"], job, DropReason.PREVIOUS_IMAGE_UNREADABLE, issues)
                yield job["study_id"], example
        finally:
            if issues:
                os.makedirs(issues_dir, exist_ok=True)
                Path(issues_dir, f"{uuid.uuid4().hex}.json").write_text(json.dumps(issues))

    def _download_and_prepare(self, dl_manager: Any, verification_mode: Any, **kwargs: Any) -> None:
        try:
            super()._download_and_prepare(dl_manager, verification_mode, **kwargs)
        except datasets.exceptions.DatasetGenerationError as err:
            strict_error = _find_preparation_error(err)
            if strict_error is not None:  # strict mode: surface our message, not the generic wrapper
                raise strict_error from err
            raise
        stats = self._stats
        assert stats is not None, "_split_generators did not run"
        issues_dir = Path(self._output_dir, "_issues")
        for issue_file in sorted(issues_dir.glob("*.json")):
            for issue in json.loads(issue_file.read_text()):
                stats.record(issue["reason"], issue["study_id"],
                             degraded=issue["reason"] != DropReason.FRONTAL_IMAGE_UNREADABLE)
                stats.images["unreadable"] += 1
        shutil.rmtree(issues_dir, ignore_errors=True)
        stats.splits = {name: self.info.splits[name].num_examples for name in SPLIT_NAMES}
        stats.studies_kept = sum(stats.splits.values())
        stats.check_consistency()
        self.info.description = stats.to_description()
        Path(self._output_dir, STATS_FILE_NAME).write_text(json.dumps(stats.to_dict(), indent=1))

    def as_dataset(self, split: Optional[str] = None, in_memory: bool = False) -> Any:
        """Like ``DatasetBuilder.as_dataset``, but an empty split (e.g. no validation
        study survived) becomes an empty ``Dataset`` instead of an error."""
        if split is not None:
            return self._one_split(str(split), in_memory)
        return datasets.DatasetDict({name: self._one_split(name, in_memory) for name in self.info.splits})

    def _one_split(self, name: str, in_memory: bool) -> datasets.Dataset:
        split_info = self.info.splits.get(name) if self.info.splits else None
        if split_info is not None and split_info.num_examples == 0:
            features = self.info.features
            return datasets.Dataset.from_dict({key: [] for key in features}, features=features,
                                              info=self.info.copy(), split=datasets.Split(name))
        return super().as_dataset(split=name, in_memory=in_memory)

    # --- helpers ----------------------------------------------------------
    @property
    def stats_file(self) -> str:
        """Path of the JSON counts file written next to the prepared Arrow files."""
        return os.path.join(self._output_dir, STATS_FILE_NAME)

    def _options(self) -> dict[str, Any]:
        """Options recorded with the counts (file paths reduced to their names)."""
        config = self.config
        return {"config_name": config.name, "report_sections": config.report_sections,
                "mask_policy": config.mask_policy, "mask_replacement": config.mask_replacement,
                "image_short_side": config.image_short_side, "grayscale": config.grayscale, "seed": config.seed,
                "split_ratios": list(config.split_ratios),
                "split_file": Path(config.split_file).name if config.split_file else None}

    def _split_of(self, result: ReadResult) -> dict[str, str]:
        """Study id -> split: the official one, else the seeded group-level split."""
        if result.official_split:
            return {s.study_id: s.split for s in result.studies if s.split is not None}
        groups = assign_splits((s.group_id for s in result.studies), self.config.split_ratios, self.config.seed)
        return {s.study_id: groups[s.group_id] for s in result.studies}

    def _clean(self, text: str) -> str:
        return apply_mask_policy(normalize_whitespace(text), self.config.mask_policy, self.config.mask_replacement)

    def _make_job(self, study: StudyRecord, split: Optional[str]) -> tuple[dict, Optional[str]]:
        """Turn a study into a generation job, or name why it is dropped."""
        findings, impression = self._clean(study.findings), self._clean(study.impression)
        report = compose_report(findings, impression, self.config.report_sections)
        missing = set(study.missing_files)
        frontal = next((p for p in study.frontal_files if p not in missing), None)
        lateral = next((p for p in study.lateral_files if p not in missing), None)
        if split is None:
            return {}, DropReason.NOT_IN_SPLIT_FILE
        if study.report_missing:
            return {}, DropReason.REPORT_FILE_MISSING
        if not _HAS_WORD.search(report):
            return {}, DropReason.NO_REPORT_TEXT
        if not study.image_files:
            return {}, DropReason.NO_IMAGES_LISTED
        if not study.frontal_files:
            return {}, DropReason.NO_FRONTAL_VIEW
        if frontal is None:
            return {}, DropReason.FRONTAL_IMAGE_MISSING
        example = {
            "study_id": study.study_id, "findings": findings, "impression": impression, "report": report,
            "report_normalized": r2gen_normalize(report), "indication": self._clean(study.indication),
            "comparison": self._clean(study.comparison), "mesh": list(study.mesh),
            "problems": list(study.problems), "image_files": list(study.image_files), **study.extra,
        }
        job = {"study_id": study.study_id, "example": example, "frontal_path": frontal, "lateral_path": lateral}
        if "previous_frontal" in self.EXTRA_FEATURES:
            job["previous_frontal"] = study.previous_frontal
        return job, None

    def _encode(self, path: Optional[str], job: dict, reason: str, issues: list[dict]) -> Optional[dict]:
        if path is None:
            return None
        try:
            return encode_image(path, self.config.image_short_side or None, self.config.grayscale)
        except (ImageReadError, FileNotFoundError) as err:
            if self.config.strict:
                raise PreparationError(f"study {job['study_id']}: {reason}: {err}") from err
            logger.warning("study %s: %s: %s", job["study_id"], reason, err)
            issues.append({"reason": reason, "study_id": job["study_id"], "file": str(path)})
            return None

    def _raise_if_strict(self, stats: PreparationStats) -> None:
        if not self.config.strict:
            return
        violations = stats.strict_violations()
        if violations:
            examples = {k: stats.examples.get(k, [])[:5] for k in violations}
            raise PreparationError(f"strict mode: {stats.layout} input would lose data: {violations}; "
                                   f"example study ids: {examples}")
