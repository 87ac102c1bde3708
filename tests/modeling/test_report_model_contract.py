"""XrayReportModel keeps `VisionEncoderDecoderModel`'s contract: construction, every forward output, keyword routing."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, PretrainedConfig, VisionEncoderDecoderModel

from conftest import build_tiny_report_model, synthetic_radiograph
from modeling import BioViLTModel, XrayReportConfig, XrayReportModel


@pytest.fixture
def model(report_tokenizer):
    return build_tiny_report_model(report_tokenizer).eval()


@pytest.fixture
def batch(tiny_processor):
    images = [[synthetic_radiograph(seed=1), synthetic_radiograph(seed=2)], synthetic_radiograph(seed=3)]
    return dict(tiny_processor(images=images, text_target=["Heart size is normal.", "There is a small effusion."]))


def _parent_forward(model, **kwargs):
    return VisionEncoderDecoderModel.forward(model, **kwargs)


def _assert_same_tensors(ours, theirs):
    assert (ours is None) == (theirs is None)
    if isinstance(ours, torch.Tensor):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
    elif ours is not None:
        assert len(ours) == len(theirs) > 0
        for mine, other in zip(ours, theirs):
            _assert_same_tensors(mine, other)


def test_every_output_equals_the_parent_class(model, batch):
    model.decoder.set_attn_implementation("eager")  # attention weights are returned by eager attention only
    options = dict(output_attentions=True, output_hidden_states=True, use_cache=True)
    with torch.no_grad():
        ours, theirs = model(**batch, **options), _parent_forward(model, **batch, **options)
    for field in ("loss", "logits", "encoder_last_hidden_state", "decoder_hidden_states", "decoder_attentions",
                  "cross_attentions"):
        _assert_same_tensors(getattr(ours, field), getattr(theirs, field))
    assert ours.encoder_last_hidden_state.shape == (2, 2 * model.config.encoder.grid_size**2, 512)


def test_past_key_values_continue_the_sequence(model, batch):
    """The cache of a forward over the first tokens gives the next token's logits of a forward over all of them."""
    ids = batch["labels"].clamp(min=0)
    encoder_inputs = {"pixel_values": batch["pixel_values"], "view_mask": batch["view_mask"]}
    with torch.no_grad():
        full = model(**encoder_inputs, decoder_input_ids=ids).logits
        prefix = model(**encoder_inputs, decoder_input_ids=ids[:, :-1], use_cache=True)
        step = model(encoder_outputs=(prefix.encoder_last_hidden_state,), decoder_input_ids=ids[:, -1:],
                     past_key_values=prefix.past_key_values)
        uncached = model(**encoder_inputs, decoder_input_ids=ids[:, :-1], use_cache=False)
    assert prefix.past_key_values is not None and uncached.past_key_values is None
    torch.testing.assert_close(step.logits[:, -1], full[:, -1], atol=1e-5, rtol=0)


def test_return_dict_false_gives_a_tuple_that_starts_like_the_parents(model, batch):
    """(loss, logits, past_key_values, encoder_last_hidden_state); the parent appends the encoder's other outputs."""
    with torch.no_grad():
        ours, theirs = model(**batch, return_dict=False), _parent_forward(model, **batch, return_dict=False)
        as_dict = model(**batch)
    assert isinstance(ours, tuple) and len(ours) == 4
    for index in (0, 1, 3):
        _assert_same_tensors(ours[index], theirs[index])
    _assert_same_tensors(ours[3], as_dict.encoder_last_hidden_state)
    with torch.no_grad():
        without_labels = model(pixel_values=batch["pixel_values"], decoder_input_ids=batch["labels"].clamp(min=0))
    assert as_dict.loss is not None and without_labels.loss is None


def test_submodule_configs_that_return_tuples_do_not_break_forward(model, batch):
    with torch.no_grad():
        expected = model(**batch).logits
        model.encoder.config.return_dict = False
        model.decoder.config.return_dict = False
        torch.testing.assert_close(model(**batch).logits, expected)


def test_decoder_masks_embeddings_and_explicit_ids_are_used(model, batch):
    ids = batch["labels"].clamp(min=0)
    mask = torch.ones_like(ids)
    mask[:, 1] = 0  # hide one earlier token: later logits change
    encoder_inputs = {"pixel_values": batch["pixel_values"], "view_mask": batch["view_mask"]}
    with torch.no_grad():
        plain = model(**encoder_inputs, decoder_input_ids=ids).logits
        masked = model(**encoder_inputs, decoder_input_ids=ids, decoder_attention_mask=mask).logits
        parent_masked = _parent_forward(model, **encoder_inputs, decoder_input_ids=ids, decoder_attention_mask=mask).logits
        embedded = model(**encoder_inputs, decoder_inputs_embeds=model.decoder.get_input_embeddings()(ids)).logits
        # explicit decoder ids win over the ones built from the labels
        with_labels = model(**batch, decoder_input_ids=ids).logits
    assert not torch.allclose(plain[:, 2:], masked[:, 2:])
    torch.testing.assert_close(masked, parent_masked, atol=1e-5, rtol=0)
    torch.testing.assert_close(embedded, plain, atol=1e-5, rtol=0)
    torch.testing.assert_close(with_labels, plain, atol=1e-5, rtol=0)


def test_decoder_prefixed_keywords_reach_the_decoder_and_the_others_the_encoder(model, batch):
    ids = batch["labels"].clamp(min=0)
    positions = torch.arange(ids.shape[1]).expand_as(ids) + 3
    inputs = {"pixel_values": batch["pixel_values"], "view_mask": batch["view_mask"], "decoder_input_ids": ids}
    with torch.no_grad():
        shifted = model(**inputs, decoder_position_ids=positions).logits
        parent = _parent_forward(model, **inputs, decoder_position_ids=positions).logits
        plain = model(**inputs).logits
        frontal_only = model(**{**inputs, "view_mask": torch.tensor([[True, False], [True, False]])}).logits
    torch.testing.assert_close(shifted, parent, atol=1e-5, rtol=0)
    assert not torch.allclose(shifted, plain)
    assert not torch.allclose(frontal_only[0], plain[0])  # view_mask reached the encoder


def test_tuple_encoder_outputs_are_accepted_and_missing_inputs_named(model, batch):
    ids = batch["labels"].clamp(min=0)
    with torch.no_grad():
        states = model.encoder(pixel_values=batch["pixel_values"], view_mask=batch["view_mask"]).last_hidden_state
        from_tuple = model(encoder_outputs=(states,), decoder_input_ids=ids).logits
        from_pixels = model(pixel_values=batch["pixel_values"], view_mask=batch["view_mask"], decoder_input_ids=ids).logits
    torch.testing.assert_close(from_tuple, from_pixels)
    with pytest.raises(ValueError) as caught:
        model(decoder_input_ids=ids)
    assert str(caught.value) == "XrayReportModel needs pixel_values (or encoder_outputs)."


def test_built_from_an_encoder_and_a_decoder_keeps_both(model):
    built = XrayReportModel(encoder=model.encoder, decoder=model.decoder)
    assert built.encoder is model.encoder and built.decoder is model.decoder
    assert isinstance(built.config, XrayReportConfig)
    assert built.config.encoder.to_dict() == model.encoder.config.to_dict()
    assert built.config.decoder.n_embd == model.decoder.config.n_embd


def test_built_from_a_config_without_the_auto_registry(model, monkeypatch):
    import transformers

    def refuse(*args, **kwargs):
        raise AssertionError("the AutoModel registry was used")

    monkeypatch.setattr(transformers.AutoModel, "from_config", refuse)
    config = model.config
    built = XrayReportModel(config)
    assert built.config is config  # an XrayReportConfig is used as it is, not rebuilt
    assert type(built.encoder) is BioViLTModel


def test_a_twin_config_class_is_rebuilt_and_a_foreign_one_refused(model):
    twin_class = type("XrayReportConfig", (PretrainedConfig,), {"model_type": "xray_report_twin"})
    twin = twin_class.from_dict(model.config.to_dict())
    built = XrayReportModel(twin)
    assert type(built.config) is XrayReportConfig
    assert built.config.encoder.to_dict() == model.config.encoder.to_dict()
    with pytest.raises(ValueError) as caught:
        XrayReportModel(GPT2Config())
    assert str(caught.value) == "XrayReportModel needs an XrayReportConfig, got GPT2Config."


@pytest.mark.parametrize("parts", [{}, {"decoder": "decoder"}, {"encoder": "encoder"}])
def test_a_model_needs_a_config_or_both_parts(model, parts):
    arguments = {name: getattr(model, attribute) for name, attribute in parts.items()}
    if parts == {"encoder": "encoder"}:
        with pytest.raises(ValueError):  # the parent class refuses an encoder alone
            XrayReportModel(**arguments)
        return
    with pytest.raises(ValueError) as caught:
        XrayReportModel(**arguments)
    assert str(caught.value) == "XrayReportModel needs a config, or both an encoder and a decoder."


def test_encoder_states_are_projected_only_when_the_widths_differ(model):
    states = torch.randn(2, 8, 512, dtype=torch.float64)  # another dtype: cast to the projection's
    projected = model.project_encoder_states(states)
    assert projected.dtype == model.enc_to_dec_proj.weight.dtype and projected.shape == (2, 8, 64)
    torch.testing.assert_close(projected, model.enc_to_dec_proj(states.float()))
    model.decoder.config.cross_attention_hidden_size = 512  # the decoder projects itself
    assert model.project_encoder_states(states) is states
