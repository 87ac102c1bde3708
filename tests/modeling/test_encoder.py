"""BioViLTModel: shapes, the multi-view rule, the prior image, errors, initialisation and DDP-safe parameters."""

from __future__ import annotations

import pytest
import torch
from huggingface_hub.errors import StrictDataclassClassValidationError

from conftest import TINY_IMAGE_SIZE, tiny_encoder_config
from modeling import BioViLTConfig, BioViLTModel

GRID = TINY_IMAGE_SIZE // 32


@pytest.fixture(scope="module")
def encoder() -> BioViLTModel:
    torch.manual_seed(0)
    return BioViLTModel(tiny_encoder_config()).eval()


def test_two_view_output_shapes_and_contiguity(encoder):
    pixel_values = torch.rand(3, 2, 3, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE)
    with torch.no_grad():
        output = encoder(pixel_values, output_patch_embeddings=True)
    assert output.last_hidden_state.shape == (3, 2 * GRID * GRID, 512)
    assert output.last_hidden_state.is_contiguous()
    assert output.pooler_output.shape == (3, 512)
    assert output.patch_embeddings.shape == (3, 2, 512, GRID, GRID)
    assert output.view_mask.all()


def test_four_dimensional_input_is_read_as_frontal_only(encoder):
    frontal = torch.rand(2, 3, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE)
    with torch.no_grad():
        output = encoder(frontal)
        same = encoder(frontal.unsqueeze(1))
    assert output.last_hidden_state.shape == (2, GRID * GRID, 512)
    torch.testing.assert_close(output.last_hidden_state, same.last_hidden_state)


def test_views_are_tagged_so_the_decoder_can_tell_them_apart(encoder):
    image = torch.rand(1, 1, 3, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE)
    with torch.no_grad():
        tokens = encoder(torch.cat([image, image], dim=1)).last_hidden_state
    frontal_tokens, lateral_tokens = tokens[:, : GRID * GRID], tokens[:, GRID * GRID :]
    # The same image in both slots differs exactly by the two view embeddings.
    view_difference = encoder.view_embeddings[0] - encoder.view_embeddings[1]
    torch.testing.assert_close(frontal_tokens - lateral_tokens, view_difference.expand_as(frontal_tokens))
    assert view_difference.abs().max() > 0


def test_single_view_study_batches_with_two_view_studies(encoder):
    frontal_a, lateral_a, frontal_b = (torch.rand(3, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE) for _ in range(3))
    pixel_values = torch.stack([torch.stack([frontal_a, lateral_a]), torch.stack([frontal_b, torch.rand_like(frontal_b)])])
    view_mask = torch.tensor([[True, True], [True, False]])
    with torch.no_grad():
        batched = encoder(pixel_values, view_mask=view_mask, output_patch_embeddings=True)
        alone = encoder(frontal_b[None, None])
    tokens_b = batched.last_hidden_state[1]
    # The frontal tokens do not depend on the companions in the batch (eval mode) ...
    torch.testing.assert_close(tokens_b[: GRID * GRID], alone.last_hidden_state[0], atol=1e-5, rtol=1e-5)
    # ... and the absent lateral is the learned missing-view embedding, whatever pixels sit in its slot.
    expected_missing = encoder.missing_view_embedding + encoder.position_embeddings + encoder.view_embeddings[1]
    torch.testing.assert_close(tokens_b[GRID * GRID :], expected_missing)
    # The pooled embedding averages present views only.
    torch.testing.assert_close(batched.pooler_output[1], alone.pooler_output[0], atol=1e-5, rtol=1e-5)
    assert torch.equal(batched.patch_embeddings[1, 1], torch.zeros_like(batched.patch_embeddings[1, 1]))


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((2, 3, 3, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE), "1 to 2 views"),
        ((2, 2, 1, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE), "must have shape"),
        ((2, 2, 3, 96, 96), "must be 64x64"),
        ((3, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE), "must have shape"),
    ],
)
def test_wrong_input_shapes_raise_clear_errors(encoder, shape, message):
    with pytest.raises(ValueError, match=message):
        encoder(torch.rand(*shape))


def test_missing_frontal_view_is_an_error(encoder):
    with pytest.raises(ValueError, match="frontal view .* absent for batch rows \\[1\\]"):
        encoder(torch.rand(2, 2, 3, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE), view_mask=torch.tensor([[1, 1], [0, 1]]))


def test_view_mask_shape_is_checked(encoder):
    with pytest.raises(ValueError, match="view_mask must have shape"):
        encoder(torch.rand(2, 2, 3, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE), view_mask=torch.ones(2, 3, dtype=torch.bool))


def test_prior_image_needs_the_temporal_pooler(encoder):
    with pytest.raises(ValueError, match="no temporal pooler"):
        encoder(
            torch.rand(1, 1, 3, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE),
            previous_pixel_values=torch.rand(1, 3, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE),
        )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"image_size": 224, "use_previous_image": True}, "needs image_size=448"),
        ({"image_size": 100}, "multiple of 32"),
        ({"num_views": 3}, "num_views must be 1"),
        ({"image_encoder_type": "resnet34"}, "image_encoder_type must be one of"),
        ({"hidden_size": 768}, "hidden_size is fixed at 512"),
        ({"local_patch_size": 8}, "local_patch_size must be at least 16"),
        ({"local_patch_size": 24}, "multiple of 24"),
        ({"image_size": 448, "use_previous_image": True, "local_patch_size": 32}, "cannot be combined"),
    ],
)
def test_impossible_configs_are_rejected(overrides, message):
    with pytest.raises(StrictDataclassClassValidationError, match=message):
        tiny_encoder_config(**overrides)


def test_local_patches_give_one_token_per_tile_that_sees_only_its_tile(tmp_path):
    torch.manual_seed(0)
    model = BioViLTModel(tiny_encoder_config(local_patch_size=16)).eval()
    grid = TINY_IMAGE_SIZE // 16
    pixel_values = torch.rand(2, 2, 3, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE)
    changed = pixel_values.clone()
    changed[:, 0, :, 16:32, 32:48] = 0.0  # the frontal tile in grid row 1, column 2
    with torch.no_grad():
        tokens = model(pixel_values).last_hidden_state
        after = model(changed).last_hidden_state
    assert model.config.grid_size == grid and tokens.shape == (2, 2 * grid * grid, 512)
    moved = ((tokens - after).abs().amax(dim=-1) > 1e-6)[0]
    assert moved.nonzero().flatten().tolist() == [1 * grid + 2]
    # A whole-image encoder spreads the same change over every token of the view.
    whole = BioViLTModel(tiny_encoder_config()).eval()
    with torch.no_grad():
        spread = (whole(pixel_values).last_hidden_state - whole(changed).last_hidden_state).abs().amax(dim=-1) > 1e-6
    assert spread[0, : GRID * GRID].all()
    model.save_pretrained(tmp_path)
    reloaded = BioViLTModel.from_pretrained(tmp_path).eval()
    assert reloaded.config.local_patch_size == 16
    with torch.no_grad():
        torch.testing.assert_close(reloaded(pixel_values).last_hidden_state, tokens)


def test_every_parameter_gets_a_gradient_without_a_prior():
    torch.manual_seed(0)
    model = BioViLTModel(tiny_encoder_config()).train()
    pixel_values = torch.rand(2, 2, 3, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE)
    model(pixel_values, view_mask=torch.tensor([[True, True], [True, False]])).last_hidden_state.sum().backward()
    assert not hasattr(model.image_encoder.encoder, "fc"), "the unused ImageNet classifier must be removed"
    assert [name for name, parameter in model.named_parameters() if parameter.grad is None] == []


@pytest.mark.slow
def test_temporal_encoder_uses_every_parameter_and_the_prior_changes_the_output():
    """ResNet-18 trunk at 448 (the pooler's fixed size): a mixed batch, one study with a prior and one without."""
    torch.manual_seed(0)
    model = BioViLTModel(BioViLTConfig(image_encoder_type="resnet18_multi_image", num_views=1)).train()
    current = torch.rand(2, 1, 3, 448, 448)
    previous = torch.rand(2, 3, 448, 448)
    output = model(current, previous_pixel_values=previous, previous_mask=torch.tensor([True, False]))
    output.last_hidden_state.sum().backward()
    assert [name for name, parameter in model.named_parameters() if parameter.grad is None] == []

    model.eval()
    with torch.no_grad():
        without_prior = model(current, output_patch_embeddings=True).patch_embeddings[:, 0]
        with_prior = model(current, previous_pixel_values=previous, previous_mask=torch.tensor([True, False]),
                           output_patch_embeddings=True)
    temporal = slice(256, 512)
    assert not torch.allclose(with_prior.patch_embeddings[0, 0, temporal], without_prior[0, temporal])
    # The study flagged as having no prior gets exactly the no-prior temporal channels.
    torch.testing.assert_close(with_prior.patch_embeddings[1, 0, temporal], without_prior[1, temporal])
    with pytest.raises(ValueError, match="previous_pixel_values must have shape"):
        model(current, previous_pixel_values=torch.rand(2, 3, 224, 224))


def test_initialisation_follows_hi_ml():
    """post_init must not replace hi-ml's initialisation by transformers' generic one (e.g. N(0, 0.02) convs)."""
    from health_multimodal.image.model.encoder import MultiImageEncoder

    torch.manual_seed(0)
    reference = MultiImageEncoder("resnet18_multi_image")
    model = BioViLTModel(tiny_encoder_config())
    ours = dict(model.image_encoder.named_parameters())
    for name in ("encoder.conv1.weight", "encoder.layer3.0.conv1.weight", "backbone_to_vit.weight"):
        expected_std = dict(reference.named_parameters())[name].std()
        assert ours[name].std().item() == pytest.approx(expected_std.item(), rel=0.1), name
    bn = model.image_encoder.encoder.bn1
    assert torch.equal(bn.weight, torch.ones_like(bn.weight)) and torch.equal(bn.running_var, torch.ones_like(bn.running_var))
    for embedding in (model.view_embeddings, model.missing_view_embedding):
        assert 0.01 < embedding.std() < 0.03
    # positions start as a 2-D sine code of the patch grid: in [-1, 1], distinct per patch, as large as the features
    positions = model.position_embeddings
    assert float(positions.detach().abs().max()) <= 1.0 + 1e-6 and 0.4 < float(positions.detach().abs().mean()) < 0.7
    assert torch.unique(positions.detach(), dim=0).shape[0] == positions.shape[0]
