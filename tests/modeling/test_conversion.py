"""Converting hi-ml's original BioViL-T checkpoint format into a transformers encoder directory."""

from __future__ import annotations

import os

import json

import pytest
import torch
from transformers import AutoModel

from conftest import run_without_project
from modeling import BioViLTModel
from modeling.convert_biovilt_checkpoint import BIOVIL_T_FILENAME, convert_checkpoint, main, md5_of


@pytest.fixture(scope="module")
def original_checkpoint(tmp_path_factory):
    """A randomly initialised hi-ml BioViL-T image model (ResNet-50, 448), saved as the original file format is."""
    from health_multimodal.image.model.model import MultiImageModel

    torch.manual_seed(0)
    hi_ml_model = MultiImageModel(img_encoder_type="resnet50_multi_image", joint_feature_size=128).eval()
    # Non-trivial BatchNorm statistics, so that a lost buffer would show in the outputs.
    for module in hi_ml_model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("original") / "biovil_t_random.pt"
    torch.save(hi_ml_model.state_dict(), path)
    return hi_ml_model, path


@pytest.fixture(scope="module")
def converted_dir(original_checkpoint, tmp_path_factory):
    _, path = original_checkpoint
    output = tmp_path_factory.mktemp("converted") / "biovil-t"
    main(["--checkpoint", str(path), "--output", str(output)])
    return output


def _images(seed: int) -> torch.Tensor:
    return torch.rand(2, 3, 448, 448, generator=torch.Generator().manual_seed(seed))


@pytest.mark.slow
@pytest.mark.parametrize("with_prior", [False, True], ids=["no-prior", "prior"])
def test_converted_encoder_reproduces_hi_ml(original_checkpoint, converted_dir, with_prior):
    hi_ml_model, _ = original_checkpoint
    encoder = AutoModel.from_pretrained(converted_dir).eval()
    assert isinstance(encoder, BioViLTModel)
    current, previous = _images(1), _images(2) if with_prior else None
    with torch.no_grad():
        expected_patches, expected_pooled = hi_ml_model.encoder(
            current_image=current, previous_image=previous, return_patch_embeddings=True
        )
        output = encoder(current, previous_pixel_values=previous, output_patch_embeddings=True)
    assert (output.patch_embeddings[:, 0] - expected_patches).abs().max() <= 1e-5
    assert (output.pooler_output - expected_pooled).abs().max() <= 1e-5


def test_conversion_drops_only_the_projector_and_classifier(original_checkpoint, tmp_path):
    hi_ml_model, path = original_checkpoint
    report = convert_checkpoint(str(path), tmp_path / "out")
    original_keys = set(hi_ml_model.state_dict())
    assert set(report.converted) | set(report.dropped) == original_keys
    assert all(key.startswith(("projector.", "encoder.encoder.fc.")) for key in report.dropped)
    assert report.new_parameters == ["missing_view_embedding", "position_embeddings", "view_embeddings"]
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["image_encoder_type"] == "resnet50_multi_image" and config["use_previous_image"] is True
    assert (tmp_path / "out" / "model.safetensors").exists()
    assert json.loads((tmp_path / "out" / "preprocessor_config.json").read_text())["crop_size"]["height"] == 448


def test_no_temporal_conversion_drops_the_pooler(original_checkpoint, tmp_path):
    _, path = original_checkpoint
    report = convert_checkpoint(str(path), tmp_path / "out", use_previous_image=False)
    assert any(key.startswith("encoder.vit_pooler.") for key in report.dropped)
    encoder = AutoModel.from_pretrained(tmp_path / "out")
    assert not hasattr(encoder.image_encoder, "vit_pooler")


def test_checksum_mismatch_is_refused(original_checkpoint, tmp_path):
    _, path = original_checkpoint
    with pytest.raises(ValueError, match="does not match the expected"):
        convert_checkpoint(str(path), tmp_path / "out", expected_md5="0" * 32)
    assert md5_of(path) != "0" * 32
    assert BIOVIL_T_FILENAME.endswith(".pt")


def test_unreadable_or_foreign_checkpoints_give_clear_errors(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="garbage.pt: not a loadable PyTorch state dict"):
        convert_checkpoint(str(garbage), tmp_path / "out")
    foreign = tmp_path / "foreign.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, foreign)
    with pytest.raises(ValueError, match="expected hi-ml ImageModel weights"):
        convert_checkpoint(str(foreign), tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        convert_checkpoint(str(tmp_path / "missing.pt"), tmp_path / "out")


def test_pickles_with_code_are_refused(tmp_path):
    """weights_only=True: a checkpoint that would run code on load is rejected, not executed."""

    marker = tmp_path / "payload_ran"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))  # what unpickling would run

    path = tmp_path / "malicious.pt"
    torch.save({"encoder.x": Payload()}, path)
    with pytest.raises(ValueError, match="not a loadable PyTorch state dict"):
        convert_checkpoint(str(path), tmp_path / "out")
    assert not marker.exists(), "the pickle's code ran: the checkpoint was not loaded with weights_only=True"


@pytest.mark.slow
def test_converted_encoder_loads_in_a_fresh_process_with_remote_code(original_checkpoint, converted_dir, tmp_path):
    hi_ml_model, _ = original_checkpoint
    images = _images(3)
    torch.save(images, tmp_path / "images.pt")
    code = f"""
import torch
from transformers import AutoModel, AutoImageProcessor
encoder = AutoModel.from_pretrained({str(converted_dir)!r}, trust_remote_code=True).eval()
processor = AutoImageProcessor.from_pretrained({str(converted_dir)!r}, trust_remote_code=True)
assert type(encoder).__name__ == "BioViLTModel" and type(processor).__name__ == "BioViLTImageProcessor"
with torch.no_grad():
    output = encoder(torch.load("images.pt", weights_only=True), output_patch_embeddings=True)
torch.save(output.pooler_output, "pooled.pt")
"""
    run_without_project(code, tmp_path)
    with torch.no_grad():
        _, expected = hi_ml_model.encoder(current_image=images, return_patch_embeddings=True)
    assert (torch.load(tmp_path / "pooled.pt", weights_only=True) - expected).abs().max() <= 1e-5
