"""Converts Microsoft's original BioViL-T image checkpoint into a transformers encoder directory.

    python -m modeling.convert_biovilt_checkpoint --output converted/biovil-t
    python -m modeling.convert_biovilt_checkpoint --checkpoint path/to/biovil_t_image_model_proj_size_128.pt --output DIR

The original file is a plain state dict of hi-ml's `ImageModel` (keys `encoder.*`, `projector.*`). The encoder
keys become `image_encoder.*` of [`BioViLTModel`]; the joint-space projector (text alignment only) and the
ResNet's unused ImageNet `fc` are dropped. The view, position and missing-view embeddings that the report model
adds are new and keep their fresh initialisation. The output directory holds `config.json`,
`model.safetensors`, the image processor config and the code needed for `trust_remote_code=True`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from processing import BioViLTImageProcessor

from . import BioViLTConfig, BioViLTModel

logger = logging.getLogger(__name__)

BIOVIL_T_REPO_ID = "microsoft/BiomedVLP-BioViL-T"
CONVERSION_FILE = "conversion.json"
"""Written next to a converted encoder: the checkpoint it came from (read by publishing for the card's base_model)."""
BIOVIL_T_REVISION = "v1.0"
BIOVIL_T_FILENAME = "biovil_t_image_model_proj_size_128.pt"
BIOVIL_T_MD5 = "a83080e2f23aa584a4f2b24c39b1bb64"
HUB_FILE_PREFIX = "hub:"

_ORIGINAL_ENCODER_PREFIX = "encoder."
_DROPPED_PREFIXES = ("projector.", "encoder.encoder.fc.")
_TEMPORAL_PREFIXES = ("encoder.vit_pooler.",)


@dataclass
class ConversionReport:
    """What happened to every key of the original state dict."""

    converted: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    new_parameters: list[str] = field(default_factory=list)


def resolve_checkpoint(checkpoint: str) -> Path:
    """A local file, or `hub:REPO_ID/FILENAME[@REVISION]` fetched with huggingface_hub (default: the official file)."""
    if not checkpoint.startswith(HUB_FILE_PREFIX):
        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: checkpoint file not found.")
        return path
    from huggingface_hub import hf_hub_download

    spec, _, revision = checkpoint[len(HUB_FILE_PREFIX) :].partition("@")
    repo_id, _, filename = spec.rpartition("/")
    if not repo_id or not filename:
        raise ValueError(f"{checkpoint!r}: expected hub:OWNER/REPO/FILENAME[@REVISION].")
    return Path(hf_hub_download(repo_id=repo_id, filename=filename, revision=revision or None))


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_original_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Loads the pickle with `weights_only=True` (tensors only, no code execution)."""
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"{path}: not a loadable PyTorch state dict ({type(error).__name__}: {error}).") from error
    if not isinstance(state_dict, dict) or not any(key.startswith(_ORIGINAL_ENCODER_PREFIX) for key in state_dict):
        raise ValueError(f"{path}: expected hi-ml ImageModel weights with 'encoder.*' keys.")
    return state_dict


def infer_config(state_dict: dict[str, torch.Tensor], use_previous_image: bool) -> BioViLTConfig:
    """ResNet-50 checkpoints have Bottleneck blocks (a `conv3` in every block); ResNet-18 ones do not."""
    is_resnet50 = "encoder.encoder.layer1.0.conv3.weight" in state_dict
    has_pooler = any(key.startswith(_TEMPORAL_PREFIXES) for key in state_dict)
    if use_previous_image and not has_pooler:
        raise ValueError("The checkpoint has no temporal pooler (encoder.vit_pooler.*); convert with --no-temporal.")
    return BioViLTConfig(
        image_encoder_type="resnet50_multi_image" if is_resnet50 else "resnet18_multi_image",
        use_previous_image=use_previous_image,
    )


def convert_state_dict(
    state_dict: dict[str, torch.Tensor], use_previous_image: bool = True
) -> tuple[BioViLTModel, ConversionReport]:
    """Builds a [`BioViLTModel`] holding the original encoder weights."""
    config = infer_config(state_dict, use_previous_image)
    model = BioViLTModel(config)
    report = ConversionReport()
    dropped_prefixes = _DROPPED_PREFIXES + (() if use_previous_image else _TEMPORAL_PREFIXES)
    converted: dict[str, torch.Tensor] = {}
    for key, tensor in state_dict.items():
        if key.startswith(dropped_prefixes) or not key.startswith(_ORIGINAL_ENCODER_PREFIX):
            report.dropped.append(key)
            continue
        converted["image_encoder." + key[len(_ORIGINAL_ENCODER_PREFIX) :]] = tensor
        report.converted.append(key)
    missing, unexpected = model.load_state_dict(converted, strict=False)
    if unexpected:
        raise ValueError(f"Checkpoint keys with no place in BioViLTModel: {unexpected[:10]}")
    missing_encoder_keys = [key for key in missing if key.startswith("image_encoder.")]
    if missing_encoder_keys:
        raise ValueError(f"The checkpoint lacks encoder weights: {missing_encoder_keys[:10]}")
    report.new_parameters = sorted(missing)
    return model, report


def convert_checkpoint(
    checkpoint: str, output_dir: str | Path, use_previous_image: bool = True, expected_md5: str | None = None
) -> ConversionReport:
    """Converts `checkpoint` and saves encoder + image processor to `output_dir`."""
    path = resolve_checkpoint(checkpoint)
    if expected_md5 is not None:
        actual = md5_of(path)
        if actual != expected_md5:
            raise ValueError(f"{path}: md5 {actual} does not match the expected {expected_md5}.")
    model, report = convert_state_dict(load_original_state_dict(path), use_previous_image=use_previous_image)
    model.save_pretrained(output_dir)
    BioViLTImageProcessor().save_pretrained(output_dir)
    # where the weights came from, for the base_model of models trained from this encoder
    source = {"base_model": BIOVIL_T_REPO_ID, "checkpoint": str(checkpoint), "md5": md5_of(path)}
    (Path(output_dir) / CONVERSION_FILE).write_text(json.dumps(source, indent=1), encoding="utf-8")
    logger.info(
        "Converted %d keys, dropped %d (%s), %d new parameters (%s).",
        len(report.converted),
        len(report.dropped),
        ", ".join(sorted({key.split(".")[0] + "." + key.split(".")[1] for key in report.dropped})),
        len(report.new_parameters),
        ", ".join(report.new_parameters),
    )
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--checkpoint",
        default=f"{HUB_FILE_PREFIX}{BIOVIL_T_REPO_ID}/{BIOVIL_T_FILENAME}@{BIOVIL_T_REVISION}",
        help="Local .pt file, or hub:OWNER/REPO/FILE[@REVISION] (default: the official BioViL-T v1.0 file).",
    )
    parser.add_argument("--output", required=True, help="Directory to write the transformers encoder to.")
    parser.add_argument(
        "--no-temporal",
        action="store_true",
        help="Drop the temporal pooler (for data without prior images; any image size then works).",
    )
    parser.add_argument(
        "--md5",
        default=None,
        help=f"Expected md5 of the checkpoint. Checked automatically ({BIOVIL_T_MD5}) for the official file name.",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    expected_md5 = args.md5
    if expected_md5 is None and Path(args.checkpoint.partition("@")[0]).name == BIOVIL_T_FILENAME:
        expected_md5 = BIOVIL_T_MD5
    convert_checkpoint(args.checkpoint, args.output, use_previous_image=not args.no_temporal, expected_md5=expected_md5)


if __name__ == "__main__":
    main()
