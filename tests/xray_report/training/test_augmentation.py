"""`image_augmentation`: random transforms of the training images, never of the images evaluation or generation see."""

from __future__ import annotations

import pytest
import torch

from training_fixtures import run, tiny_argv, write_studies
from xray_report.training.augmentation import ImageAugmentation, augment_batch


def _gray_views(batch_size: int = 3, num_views: int = 2, size: int = 48) -> torch.Tensor:
    """`(batch_size, num_views, 3, size, size)`: a bright disc on a dark field, the gray channel repeated."""
    y, x = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    disc = ((x**2 + y**2) < 0.3).float() * 0.6 + 0.2
    return disc.expand(batch_size, num_views, 3, size, size).clone()


def test_present_views_are_transformed_each_with_its_own_draw_and_absent_views_stay_empty():
    images = _gray_views()
    images[1, 1] = 0
    mask = torch.tensor([[True, True], [True, False], [True, True]])
    torch.manual_seed(0)
    augmented = ImageAugmentation()(images, mask)
    assert augmented.shape == images.shape and augmented.dtype == images.dtype
    assert torch.equal(augmented[1, 1], torch.zeros_like(augmented[1, 1]))
    present = [augmented[i, v] for i in range(3) for v in range(2) if mask[i, v]]
    for view in present:
        assert not torch.allclose(view, images[0, 0], atol=1e-3)  # changed
        assert torch.equal(view[0], view[1]) and torch.equal(view[0], view[2])  # still gray
        assert 0.0 <= float(view.min()) and float(view.max()) <= 1.0
    assert all(not torch.allclose(present[0], other, atol=1e-3) for other in present[1:])  # independent draws
    assert torch.equal(images[0, 0], _gray_views()[0, 0])  # the input is not modified


def test_the_draws_follow_torch_s_seed():
    images, mask = _gray_views(), torch.ones(3, 2, dtype=torch.bool)
    torch.manual_seed(3)
    first = ImageAugmentation()(images, mask)
    torch.manual_seed(3)
    assert torch.equal(first, ImageAugmentation()(images, mask))
    assert not torch.equal(first, ImageAugmentation()(images, mask))


def test_no_flip_a_side_stays_on_its_side():
    """A finding on the image's left half stays there (rotation and shift are small), so 'right' / 'left' hold."""
    images = torch.zeros(8, 1, 3, 64, 64)
    images[..., 24:40, 6:22] = 1.0
    torch.manual_seed(0)
    augmented = ImageAugmentation()(images, torch.ones(8, 1, dtype=torch.bool))
    for image in augmented[:, 0, 0]:
        low, high = image.min(), image.max()
        columns = torch.nonzero(image > (low + high) / 2)[:, 1]  # the square, whatever the contrast did to the rest
        assert len(columns) > 0 and int(columns.max()) < 32


def test_bad_inputs_are_errors_naming_the_problem():
    augmentation = ImageAugmentation()
    with pytest.raises(ValueError, match="does not match"):
        augmentation(_gray_views(), torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="float images"):
        augmentation((_gray_views() * 255).to(torch.uint8), torch.ones(3, 2, dtype=torch.bool))


def test_augment_batch_changes_the_images_and_their_priors_only():
    batch = {"pixel_values": _gray_views(), "view_mask": torch.ones(3, 2, dtype=torch.bool),
             "previous_pixel_values": _gray_views(3, 1)[:, 0], "previous_mask": torch.tensor([True, False, True]),
             "labels": torch.arange(6).reshape(3, 2)}
    augmented = augment_batch(batch, ImageAugmentation())
    assert not torch.allclose(augmented["pixel_values"], batch["pixel_values"], atol=1e-3)
    assert not torch.allclose(augmented["previous_pixel_values"][0], batch["previous_pixel_values"][0], atol=1e-3)
    assert torch.equal(augmented["previous_pixel_values"][1], batch["previous_pixel_values"][1])  # no prior
    assert augmented["labels"] is batch["labels"] and augmented["view_mask"] is batch["view_mask"]


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    return write_studies(tmp_path_factory.mktemp("augmentation") / "studies", num_studies=24)


def _pixels_seen_by_the_model(trainer, step) -> torch.Tensor:
    seen = []
    handle = trainer.model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["pixel_values"].detach().clone()), with_kwargs=True)
    try:
        step()
    finally:
        handle.remove()
    return seen[0]


@pytest.mark.parametrize("augment", [True, False])
def test_the_trainer_augments_training_steps_only_and_only_when_asked(studies, tmp_path, augment):
    result = run(tiny_argv(studies, tmp_path / "run", "--max_steps", "1", "--image_augmentation", str(augment).lower()))
    trainer = result.trainer
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    trained_on = _pixels_seen_by_the_model(trainer, lambda: trainer.training_step(trainer.model, batch))
    assert torch.equal(trained_on, batch["pixel_values"]) is not augment
    evaluated_on = _pixels_seen_by_the_model(
        trainer, lambda: trainer.prediction_step(trainer.model, batch, prediction_loss_only=True))
    assert torch.equal(evaluated_on, batch["pixel_values"])


def test_kwargs_override_the_ranges_and_bad_ones_are_named():
    augmentation = ImageAugmentation.from_kwargs({"degrees": 0, "scale": [1, 1]})
    assert augmentation.degrees == 0 and augmentation.scale == (1.0, 1.0) and augmentation.contrast == 0.2
    with pytest.raises(ValueError, match=r"unknown image augmentation setting\(s\) \['rotate'\]"):
        ImageAugmentation.from_kwargs({"rotate": 5})
    with pytest.raises(ValueError, match="scale must be"):
        ImageAugmentation(scale=(1.2, 0.8))
    with pytest.raises(ValueError, match="brightness and contrast"):
        ImageAugmentation(brightness=1.5)


def test_the_config_takes_the_ranges_as_json_or_as_a_yaml_mapping(tmp_path):
    from xray_report.training import ConfigError, parse_config
    from training_fixtures import TINY_CONFIG

    _, _, args = parse_config([str(TINY_CONFIG), "--image_augmentation", "true",
                               "--image_augmentation_kwargs", '{"degrees": 0, "translate": 0.1}'])
    assert args.image_augmentation_kwargs == {"degrees": 0, "translate": 0.1}
    config = tmp_path / "augment.yaml"
    config.write_text(TINY_CONFIG.read_text() + "\nimage_augmentation: true\nimage_augmentation_kwargs: {scale: [1, 1]}\n")
    assert parse_config([str(config)])[2].image_augmentation_kwargs == {"scale": [1, 1]}
    with pytest.raises(ConfigError, match="image_augmentation is false"):
        parse_config([str(TINY_CONFIG), "--image_augmentation_kwargs", '{"degrees": 0}'])
    with pytest.raises(ConfigError, match="not valid JSON"):
        parse_config([str(TINY_CONFIG), "--image_augmentation", "true", "--image_augmentation_kwargs", "{degrees"])
    with pytest.raises(ConfigError, match="unknown image augmentation"):
        parse_config([str(TINY_CONFIG), "--image_augmentation", "true", "--image_augmentation_kwargs", '{"flip": 1}'])


def test_the_trainer_augments_with_the_configured_ranges(studies, tmp_path):
    """All ranges zero: the transform is the identity, so the training step sees the batch's own pixels."""
    nothing = '{"degrees": 0, "translate": 0, "scale": [1, 1], "brightness": 0, "contrast": 0}'
    trainer = run(tiny_argv(studies, tmp_path / "run", "--max_steps", "1", "--image_augmentation", "true",
                            "--image_augmentation_kwargs", nothing)).trainer
    assert trainer.image_augmentation == ImageAugmentation(0, 0, (1, 1), 0, 0)
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    trained_on = _pixels_seen_by_the_model(trainer, lambda: trainer.training_step(trainer.model, batch))
    assert torch.equal(trained_on, batch["pixel_values"])
