"""Grounding heatmaps from the report pipeline: taken from generate's own attention, per sentence and per view."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import xray_report.inference.heatmaps as heatmaps
from conftest import synthetic_radiograph
from xray_report.inference.generation import load_model_and_processor, report_pipeline
from inference_fixtures import LEARNED_SENTENCES, trained_model_dir  # noqa: F401


@pytest.fixture(scope="module")
def loaded(trained_model_dir):
    return load_model_and_processor(trained_model_dir)


def _teacher_forced_attention(model, processor, study, sequences):
    """Reference: one teacher-forced forward on the generated ids, eager attention.

    Returns `(T, L, H, S)` per-layer, per-head maps of the first study; query position t (start token at 0)
    predicts generated token t.
    """
    inputs = processor(images=[study])
    previous = model.decoder.config._attn_implementation
    model.decoder.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            out = model(**inputs, decoder_input_ids=sequences, output_attentions=True)
    finally:
        model.decoder.set_attn_implementation(previous)
    return torch.stack(list(out.cross_attentions)).float()[:, 0, :, :-1].permute(2, 0, 1, 3)


def _concentration_weighted(maps):
    """The documented rule, written out: each head's map counts by 1 - entropy / log(tokens); sum, then normalise."""
    entropy = -(maps * torch.log(maps.clamp_min(1e-12))).sum(dim=-1)
    weights = (1 - entropy / np.log(maps.shape[-1])).clamp_min(1e-6)
    weighted = (maps * weights.unsqueeze(-1)).flatten(0, -2).sum(dim=0)
    return weighted / weighted.sum()


def test_maps_cover_each_view_grid_and_sum_to_one(loaded):
    model, processor = loaded
    grid = model.config.encoder.grid_size
    output = report_pipeline(model, processor)({"frontal": synthetic_radiograph(seed=5)}, return_heatmaps=True)[0]
    result = heatmaps.study_heatmaps(output)
    assert [s.sentence for s in result.sentences] == LEARNED_SENTENCES
    for item in result.sentences:
        assert item.maps.shape == (2, grid, grid)
        assert item.maps.sum().item() == pytest.approx(1.0, abs=1e-5)
        assert item.view_mass == pytest.approx(item.maps.sum(dim=(1, 2)).tolist(), abs=1e-6)
        assert item.view_present == [True, False]
    frontal, lateral = result.overlays()[0]
    assert lateral is None and frontal.mode == "RGB" and frontal.size == result.view_images[0].size
    assert model.decoder.config._attn_implementation != "eager"  # eager was only borrowed for the generate call


@pytest.mark.parametrize("num_beams", [1, 3])
def test_sentence_maps_equal_the_attention_of_the_generated_tokens(loaded, num_beams):
    """The maps come from generate's attention (no second pass); they equal a teacher-forced pass on the output."""
    model, processor = loaded
    study = [synthetic_radiograph(seed=6), synthetic_radiograph(seed=7)]
    output = report_pipeline(model, processor)({"frontal": study[0], "lateral": study[1]}, return_heatmaps=True,
                                               num_beams=num_beams)[0]
    with torch.no_grad():
        sequences = model.generate(**processor(images=[study]), num_beams=num_beams)
    assert processor.batch_decode(sequences)[0] == output["generated_text"]
    reference = _teacher_forced_attention(model, processor, study, sequences)
    positions = [p for sentence in output["sentences"] for p in sentence["token_positions"]]
    assert positions == list(range(output["num_tokens"]))  # every generated token (EOS excluded) in one sentence
    for sentence in output["sentences"]:
        expected = _concentration_weighted(reference[sentence["token_positions"]]).reshape(sentence["heatmap"].shape)
        np.testing.assert_allclose(sentence["heatmap"], expected.numpy(), atol=1e-5)
        plain_mean = reference[sentence["token_positions"]].mean(dim=(0, 1, 2)).reshape(sentence["heatmap"].shape)
        assert not np.allclose(sentence["heatmap"], plain_mean.numpy(), atol=1e-4)  # the weighting takes part


def test_token_index_maps_to_view_row_and_column(loaded, tmp_path):
    """All attention on encoder token V*g*g index (view 1, row 1, col 0) lands there and in that overlay corner."""
    model, processor = loaded
    grid = model.config.encoder.grid_size
    output = report_pipeline(model, processor)(
        {"frontal": synthetic_radiograph(seed=5), "lateral": synthetic_radiograph(seed=8)}, return_heatmaps=True
    )[0]
    one_hot = np.zeros((2, grid, grid), dtype=np.float32)
    one_hot[1, 1, 0] = 1.0
    for sentence in output["sentences"]:
        sentence["heatmap"] = one_hot
    result = heatmaps.study_heatmaps(output)
    item = result.sentences[0]
    assert item.maps[1, 1, 0].item() == 1.0 and item.maps.sum().item() == 1.0 and item.view_mass == [0.0, 1.0]
    overlay = np.asarray(result.overlays()[0][1], dtype=float)
    half = overlay.shape[0] // 2
    assert overlay[half:, :half, 0].mean() > overlay[:half, half:, 0].mean() + 40  # red where the attention is

    written = heatmaps.save_heatmaps(result, tmp_path, "study/1")
    index = json.loads((tmp_path / "study_1" / "sentences.json").read_text())
    assert [s["sentence"] for s in index["sentences"]] == LEARNED_SENTENCES
    assert len(written) == 2 * len(LEARNED_SENTENCES) and all(p.suffix == ".png" for p in written)


def test_heatmaps_cost_nothing_when_off(loaded, monkeypatch):
    """Without return_heatmaps the pipeline neither asks generate for attention nor switches to eager attention."""
    model, processor = loaded
    calls = []
    original = type(model).generate

    def recording(self, *args, **kwargs):
        calls.append(kwargs.get("output_attentions"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(model), "generate", recording)
    output = report_pipeline(model, processor)(synthetic_radiograph(seed=5))[0]
    assert calls == [None] and "view_images" not in output and "heatmap" not in output["sentences"][0]
    with pytest.raises(ValueError, match="return_heatmaps=True"):
        heatmaps.study_heatmaps(output)


def test_sentence_spans_and_token_membership():
    from modeling.pipeline_xray_report import _sentences, split_sentence_spans

    text = "The heart is normal.  Lungs clear.\nNo effusion of 4.5 cm."
    assert [text[a:b] for a, b in split_sentence_spans(text)] == [
        "The heart is normal.", "Lungs clear.", "No effusion of 4.5 cm."]
    pieces = ["The", " heart", " is", " normal", ".", " ", " Lungs", " clear", ".", "\n", "No", " effusion", " of",
              " 4", ".", "5", " cm", "."]
    ends = list(np.cumsum([len(p) for p in pieces]))
    sentences = _sentences("The heart is normal. Lungs clear. No effusion of 4.5 cm.", "".join(pieces), ends)
    assert [s["text"] for s in sentences] == ["The heart is normal.", "Lungs clear.", "No effusion of 4.5 cm."]
    assert sentences[0]["tokens"] == [0, 1, 2, 3, 4]
    assert sentences[1]["tokens"] == [5, 6, 7, 8]  # a whitespace-only token goes with the next visible one
    assert sentences[2]["tokens"] == list(range(9, 18))  # "4.5" does not end the sentence


def test_tokens_that_show_no_character_join_the_next_visible_one():
    """Byte-level tokens can hold part of a character (decoded as nothing until the next completes it)."""
    from modeling.pipeline_xray_report import _sentences

    pieces = ["Heart", " normal", ".", "", " Lung", "\u00e9", " clear", ".", " "]  # token 3 starts the "é" token 5 ends
    ends = list(np.cumsum([len(p) for p in pieces]))
    text = "".join(pieces)
    sentences = _sentences(text.strip(), text, ends)
    assert [s["text"] for s in sentences] == ["Heart normal.", "Lung\u00e9 clear."]
    assert sentences[0]["tokens"] == [0, 1, 2]
    assert sentences[1]["tokens"] == [3, 4, 5, 6, 7, 8]  # the trailing space joins the last sentence


def test_offsets_follow_decode_when_bytes_form_no_valid_character(byte_tokenizer):
    """A random-weight byte-level model can emit bytes that form no UTF-8 character: the text is still `decode`'s."""
    from modeling.pipeline_xray_report import _decode_with_offsets, _sentences

    ids = byte_tokenizer("Heart ok. Lung")["input_ids"]
    stray = byte_tokenizer.convert_tokens_to_ids("\u00e2")  # the byte 0xE2, a lead byte with no continuation
    sequence = ids[:6] + [stray, stray] + ids[6:]
    text, ends = _decode_with_offsets(byte_tokenizer, sequence)
    assert text == byte_tokenizer.decode(sequence, skip_special_tokens=True) and "\ufffd" in text
    assert ends == sorted(ends) and ends[-1] == len(text) and len(ends) == len(sequence)
    sentences = _sentences(text, text, ends)
    assert [token for sentence in sentences for token in sentence["tokens"]] == list(range(len(sequence)))


def test_attention_concentration_is_one_for_a_single_token_and_near_zero_for_a_uniform_map():
    from modeling.pipeline_xray_report import attention_concentration

    maps = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25], [0.5, 0.5, 0.0, 0.0]])
    weights = attention_concentration(maps)
    assert weights[0].item() == pytest.approx(1.0) and 0 < weights[1].item() < 1e-5
    assert weights[2].item() == pytest.approx(0.5)  # entropy log 2 of log 4
    assert attention_concentration(torch.ones(3, 1)).tolist() == [1.0, 1.0, 1.0]  # one token: nothing to compare
