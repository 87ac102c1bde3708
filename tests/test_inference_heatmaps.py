"""Grounding heatmaps: per-sentence cross-attention maps per view, their sums, layout and PNG overlays."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import inference.heatmaps as heatmaps
from conftest import synthetic_radiograph
from inference.generation import load_model_and_processor
from inference_fixtures import LEARNED_SENTENCES, trained_model_dir  # noqa: F401


@pytest.fixture(scope="module")
def loaded(trained_model_dir):
    return load_model_and_processor(trained_model_dir)


def test_maps_cover_each_view_grid_and_sum_to_one(loaded):
    model, processor = loaded
    grid = model.config.encoder.grid_size
    result = heatmaps.sentence_heatmaps(model, processor, [synthetic_radiograph(seed=5), None])
    assert [s.sentence for s in result.sentences] == LEARNED_SENTENCES
    for item in result.sentences:
        assert item.maps.shape == (2, grid, grid)
        assert item.maps.sum().item() == pytest.approx(1.0, abs=1e-5)
        assert item.view_mass == pytest.approx(item.maps.sum(dim=(1, 2)).tolist(), abs=1e-6)
        assert item.view_present == [True, False]
    frontal, lateral = result.overlays()[0]
    assert lateral is None and frontal.mode == "RGB" and frontal.size == result.view_images[0].size
    assert model.decoder.config._attn_implementation != "eager"  # eager was only borrowed for the forward pass


def test_sentence_maps_match_the_attention_seen_during_generation(loaded):
    """Token t+1 is predicted from query position t: the teacher-forced maps equal generate's own attentions."""
    model, processor = loaded
    study = [synthetic_radiograph(seed=6), synthetic_radiograph(seed=7)]
    result = heatmaps.sentence_heatmaps(model, processor, study)
    inputs = processor(images=[study])
    previous = model.decoder.config._attn_implementation
    model.decoder.set_attn_implementation("eager")
    try:
        out = model.generate(**inputs, output_attentions=True, return_dict_in_generate=True)
    finally:
        model.decoder.set_attn_implementation(previous)
    # out.cross_attentions[step][layer]: (batch, heads, 1, V*g*g); step s produced token s + 1
    per_step = torch.stack([torch.stack(step).mean(dim=(0, 2))[0, -1] for step in out.cross_attentions])
    for item in result.sentences:
        expected = per_step[[p - 1 for p in item.token_positions]].mean(dim=0)
        torch.testing.assert_close(item.maps.flatten(), expected, atol=1e-5, rtol=1e-4)


def test_token_index_maps_to_view_row_and_column(loaded, monkeypatch, tmp_path):
    """All attention on encoder token V*g*g index (view 1, row 1, col 0) lands there and in that overlay corner."""
    model, processor = loaded
    grid = model.config.encoder.grid_size
    target = 1 * grid * grid + 1 * grid + 0

    def one_hot(model, inputs, sequences):
        attention = torch.zeros(*sequences.shape, 2 * grid * grid)
        attention[..., target] = 1.0
        return attention

    monkeypatch.setattr(heatmaps, "cross_attention", one_hot)
    result = heatmaps.sentence_heatmaps(model, processor, [synthetic_radiograph(seed=5), synthetic_radiograph(seed=8)])
    item = result.sentences[0]
    assert item.maps[1, 1, 0].item() == 1.0 and item.maps.sum().item() == 1.0 and item.view_mass == [0.0, 1.0]
    overlay = np.asarray(result.overlays()[0][1], dtype=float)
    half = overlay.shape[0] // 2
    assert overlay[half:, :half, 0].mean() > overlay[:half, half:, 0].mean() + 40  # red where the attention is

    written = heatmaps.save_heatmaps(result, tmp_path, "study/1")
    index = json.loads((tmp_path / "study_1" / "sentences.json").read_text())
    assert [s["sentence"] for s in index["sentences"]] == LEARNED_SENTENCES
    assert len(written) == 2 * len(LEARNED_SENTENCES) and all(p.suffix == ".png" for p in written)


def test_sentence_spans_group_tokens(loaded):
    _, processor = loaded
    ids = processor.tokenizer("The heart is normal. Lungs clear.", add_special_tokens=False)["input_ids"]
    spans = heatmaps.sentence_spans(processor.tokenizer, ids)
    assert [text for text, _ in spans] == ["The heart is normal.", "Lungs clear."]
    assert sorted(p for _, members in spans for p in members) == list(range(len(ids)))
