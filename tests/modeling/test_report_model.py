"""XrayReportModel built by build_report_model: tokens, generation defaults, loss, learning to stop."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from conftest import TINY_IMAGE_SIZE, build_tiny_report_model, synthetic_radiograph, tiny_decoder_config, tiny_encoder_config
from modeling import XrayReportModel, build_report_model
from processing import REPORT_PAD_TOKEN, build_byte_level_tokenizer
from inference_fixtures import marker_model_dir  # noqa: F401


def test_special_tokens_and_generation_defaults(report_tokenizer):
    model = build_tiny_report_model(report_tokenizer)
    assert isinstance(model, XrayReportModel)
    assert report_tokenizer.pad_token == REPORT_PAD_TOKEN
    assert model.config.pad_token_id == report_tokenizer.pad_token_id != report_tokenizer.eos_token_id
    assert model.config.decoder_start_token_id == report_tokenizer.bos_token_id
    assert model.config.eos_token_id == report_tokenizer.eos_token_id
    generation = model.generation_config
    assert (generation.pad_token_id, generation.eos_token_id) == (model.config.pad_token_id, model.config.eos_token_id)
    assert generation.max_new_tokens == 128 and generation.num_beams == 1
    assert generation.suppress_tokens == [report_tokenizer.pad_token_id]
    assert model.config.decoder.vocab_size == len(report_tokenizer)  # a fresh decoder gets exactly the tokenizer's vocabulary
    # Generation settings live in generation_config only; config.json stays loadable.
    assert "max_new_tokens" not in model.config.to_dict()
    assert model.decoder.get_input_embeddings().num_embeddings >= len(report_tokenizer)
    assert model.config.decoder.add_cross_attention and model.config.decoder.is_decoder
    assert model.enc_to_dec_proj.in_features == 512 and model.enc_to_dec_proj.out_features == 64
    assert XrayReportModel.accepts_loss_kwargs is False


def test_generation_overrides(report_tokenizer):
    model = build_report_model(tiny_encoder_config(), tiny_decoder_config(), report_tokenizer, generation={"num_beams": 3})
    assert model.generation_config.num_beams == 3


def test_tokenizer_with_pad_equal_to_eos_is_refused():
    tokenizer = build_byte_level_tokenizer()
    tokenizer.pad_token = tokenizer.eos_token
    with pytest.raises(ValueError, match="pad token distinct from EOS"):
        build_report_model(tiny_encoder_config(), tiny_decoder_config(), tokenizer)


def test_decoder_from_a_local_gpt2_directory_gets_cross_attention(tmp_path, byte_tokenizer):
    torch.manual_seed(0)
    pretrained = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=2, vocab_size=len(byte_tokenizer)))
    pretrained.save_pretrained(tmp_path / "gpt2-tiny")
    model = build_report_model(tiny_encoder_config(), str(tmp_path / "gpt2-tiny"), byte_tokenizer)
    assert model.config.decoder.add_cross_attention
    assert hasattr(model.decoder.transformer.h[0], "crossattention")
    # The pretrained self-attention weights were kept.
    torch.testing.assert_close(model.decoder.transformer.h[0].attn.c_attn.weight, pretrained.transformer.h[0].attn.c_attn.weight)


def test_decoder_model_without_cross_attention_is_refused(byte_tokenizer):
    decoder = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=len(byte_tokenizer)))
    with pytest.raises(ValueError, match="add_cross_attention=True"):
        build_report_model(tiny_encoder_config(), decoder, byte_tokenizer)


def test_loss_ignores_padding_and_trainer_loss_kwargs_are_rejected(tiny_model, tiny_processor):
    images = [synthetic_radiograph(seed=1), synthetic_radiograph(seed=2)]
    texts = ["Heart size normal.", "No acute cardiopulmonary abnormality is seen."]
    short = tiny_processor(images=images, text_target=texts)
    assert (short["labels"][0] == -100).any()  # the first row is padded in the batch
    tiny_model.eval()
    with torch.no_grad():
        loss = tiny_model(**short).loss
        # Each study encoded alone (no padding at all), averaged by token count, equals the padded batch's loss.
        alone = [tiny_processor(images=[image], text_target=[text]) for image, text in zip(images, texts)]
        per_row = [tiny_model(**inputs).loss for inputs in alone]
    counts = torch.tensor([float((inputs["labels"] != -100).sum()) for inputs in alone])
    assert not any((inputs["labels"] == -100).any() for inputs in alone)
    torch.testing.assert_close(loss, (torch.stack(per_row) * counts).sum() / counts.sum())
    with pytest.raises(TypeError):
        tiny_model(**short, num_items_in_batch=torch.tensor(4))


def test_model_learns_reports_and_stops_at_eos(marker_model_dir):
    """Two studies that differ only in the image: the model trained on such studies (`marker_model_dir`: a report for
    a frontal view with a bright spot, another without) writes each its report and stops at EOS, padding after it."""
    from inference_fixtures import MARKER_REPORT, PLAIN_REPORT
    from processing import XrayReportProcessor

    model = XrayReportModel.from_pretrained(marker_model_dir).eval()
    processor = XrayReportProcessor.from_pretrained(marker_model_dir)
    reports = [PLAIN_REPORT, MARKER_REPORT]
    images = [synthetic_radiograph(seed=3), synthetic_radiograph(seed=3, bright_spot=True)]
    batch = processor(images=images, text_target=reports)
    room = batch["labels"].shape[1] + 10
    generated = model.generate(pixel_values=batch["pixel_values"], view_mask=batch["view_mask"], max_new_tokens=room)
    assert processor.batch_decode(generated) == reports
    tokenizer = processor.tokenizer
    eos = tokenizer.eos_token_id
    for row in generated.tolist():
        assert eos in row[1:], "generation must end with EOS, not run to max_new_tokens"
        end = row.index(eos, 1)
        assert all(token == tokenizer.pad_token_id for token in row[end + 1 :])
    lengths = [row.index(eos, 1) for row in generated.tolist()]
    assert lengths[0] != lengths[1]  # the shorter report is padded after its EOS


def test_generate_accepts_single_and_two_view_studies_in_one_batch(tiny_model, tiny_processor):
    batch = tiny_processor(images=[[synthetic_radiograph(seed=4), synthetic_radiograph(seed=5)], synthetic_radiograph(seed=6)])
    assert batch["view_mask"].tolist() == [[True, True], [True, False]]
    generated = tiny_model.generate(**batch, max_new_tokens=4)
    assert generated.shape[0] == 2 and generated.shape[1] <= 5
    beams = tiny_model.generate(**batch, max_new_tokens=4, num_beams=3, num_return_sequences=2)
    assert beams.shape[0] == 4  # encoder inputs (view_mask included) are expanded per beam
    assert batch["pixel_values"].shape == (2, 2, 3, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE)


@pytest.mark.parametrize("num_beams", [1, 3])
def test_generate_projects_encoder_states_once_and_matches_the_parent_path(tiny_model, tiny_processor, num_beams):
    """The encoder runs and its tokens are projected once per generate call; ids equal the parent class's way of
    re-projecting at every step, and the logits of both forwards agree within 1e-5."""
    from transformers import VisionEncoderDecoderModel

    model = tiny_model.eval()
    inputs = tiny_processor(images=[[synthetic_radiograph(seed=1), synthetic_radiograph(seed=2)],
                                    synthetic_radiograph(seed=3)])
    projections, encoder_calls = [], []
    model.enc_to_dec_proj.register_forward_hook(lambda m, a, o: projections.append(o.shape))
    model.encoder.register_forward_hook(lambda m, a, o: encoder_calls.append(1))
    with torch.no_grad():
        ids = model.generate(**inputs, num_beams=num_beams, min_new_tokens=8, max_new_tokens=8)
    assert len(projections) == 1 and len(encoder_calls) == 1
    assert projections[0][0] == 2  # before beams are expanded: one projection per study

    class ReprojectEveryStep(VisionEncoderDecoderModel):
        """The parent's generate: every step hands the raw encoder output to the parent's forward."""

    reference = ReprojectEveryStep(config=model.config, encoder=model.encoder, decoder=model.decoder).eval()
    reference.enc_to_dec_proj = model.enc_to_dec_proj
    reference.generation_config = model.generation_config
    with torch.no_grad():
        reference_ids = reference.generate(**inputs, num_beams=num_beams, min_new_tokens=8, max_new_tokens=8)
        ours = model(**inputs, decoder_input_ids=ids).logits
        theirs = VisionEncoderDecoderModel.forward(model, **inputs, decoder_input_ids=ids).logits
    assert torch.equal(ids, reference_ids)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


def test_encoder_extras_only_when_asked(tiny_model):
    pixels = torch.rand(2, 2, 3, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE)
    with torch.no_grad():
        plain = tiny_model.encoder(pixels)
        full = tiny_model.encoder(pixels, output_patch_embeddings=True)
    assert plain.patch_embeddings is None and full.patch_embeddings.shape[:2] == (2, 2)
    torch.testing.assert_close(plain.last_hidden_state, full.last_hidden_state)
