"""Grounding heatmaps from the report pipeline: taken from generate's own attention, per sentence and per view."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import xray_report.inference.heatmaps as heatmaps
from conftest import synthetic_radiograph
from xray_report.inference.loading import load_model_and_processor, report_pipeline
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
    assert lateral is None and frontal.mode == "RGB"
    assert frontal.size == heatmaps.display_size(result.view_images[0].size) == (256, 256)  # the 64 px crop, enlarged
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

    folder = heatmaps.save_heatmaps(result, tmp_path, "study/1")
    assert folder.parent == tmp_path and folder.name == heatmaps.study_folder_name("study/1")
    assert folder.name.startswith("study_1-")
    index = json.loads((folder / "sentences.json").read_text())
    assert index["study_id"] == "study/1"
    assert [s["sentence"] for s in index["sentences"]] == LEARNED_SENTENCES
    written = sorted(folder.glob("*.png"))
    assert len(written) == 2 * len(LEARNED_SENTENCES)
    assert sorted(name for s in index["sentences"] for name in s["files"].values()) == [p.name for p in written]
    captions = result.captions()
    for entry, sentence_captions in zip(index["sentences"], captions):  # one number for caption, file and index
        assert entry["number"] == entry["index"] + 1
        assert all(caption.startswith(f"{entry['number']}. ") for caption in sentence_captions)
        assert all(name.startswith(f"sentence_{entry['number']:02d}_") for name in entry["files"].values())


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


# ------------------------------------------------------------------------------ display: size, crop, colour bar


def _study_output(loaded, frontal, lateral=None):
    model, processor = loaded
    study = {"frontal": frontal, "lateral": lateral}
    return report_pipeline(model, processor)(study, return_heatmaps=True)[0]


@pytest.mark.parametrize("size", [(80, 96), (300, 200), (1200, 900)])
def test_crop_box_is_the_region_the_processor_keeps(tiny_processor, size):
    """Cropping the original to `crop_box` and resizing it to the model input reproduces the processor's input."""
    from PIL import Image

    width, height = size
    rows, cols = np.mgrid[0:height, 0:width]
    original = Image.fromarray(((rows * 7 + cols * 3) % 251 + ((rows // 9 + cols // 11) % 2) * 4).astype(np.uint8))
    processed = tiny_processor(images=[[original]], return_tensors="np")["pixel_values"][0, 0, 0] * 255
    box = heatmaps.crop_box(original.size, tiny_processor)
    side = min(width, height) * 64 / 72  # the crop is 64 of the 72 px short side
    assert box[2] - box[0] == pytest.approx(side, rel=0.02) and box[3] - box[1] == pytest.approx(side, rel=0.02)
    assert (box[0] + box[2]) / 2 == pytest.approx(width / 2, abs=2) and (box[1] + box[3]) / 2 == pytest.approx(height / 2, abs=2)
    resized = original.resize((round(width * 72 / min(size)), round(height * 72 / min(size))), Image.Resampling.BILINEAR)
    scale = resized.width / width
    region = resized.crop(tuple(round(v * scale) for v in box))
    assert region.size == (64, 64)
    assert np.abs(np.asarray(region, dtype=float) - processed).mean() < 1.0  # the very pixels the model saw


def test_display_size_keeps_the_aspect_and_caps_the_long_side():
    assert heatmaps.display_size((1841, 1955)) == (482, 512)
    assert heatmaps.display_size((400, 300)) == (400, 300)
    assert heatmaps.display_size((64, 64)) == (256, 256)
    assert heatmaps.display_size((80, 96)) == (213, 256)


def test_overlays_are_drawn_on_the_original_at_its_displayed_size(loaded):
    """Given the study's own images, each overlay has the displayed size of that image (not the model's 64 px), the
    map lies on the region the model saw and the rest is dimmed."""
    from PIL import Image

    model, processor = loaded
    wide = Image.fromarray(np.full((300, 700), 200, dtype=np.uint8))  # a flat image: the colours are the map's
    wide.putpixel((0, 0), 0)
    output = _study_output(loaded, wide)
    grid = model.config.encoder.grid_size
    for sentence in output["sentences"]:
        sentence["heatmap"] = np.full((2, grid, grid), 1.0 / grid**2, dtype=np.float32) * np.array([1, 0])[:, None, None]
    result = heatmaps.study_heatmaps(output, views=[wide, None], processor=processor)
    assert result.originals[0].size == (700, 300) and result.originals[1] is None
    overlay = result.overlays()[0][0]
    assert overlay.size == heatmaps.display_size((700, 300)) == (512, 219)
    assert result.display_images()[0].size == overlay.size
    left, top, right, bottom = result.crop_boxes[0]
    assert (right - left) == pytest.approx(300 * 64 / 72, rel=0.02)  # a centred square of the short side
    pixels = np.asarray(overlay, dtype=float)
    scale = 512 / 700
    centre = pixels[100:120, 250:262]
    outside = pixels[100:120, 5:40]  # left of the crop: the model never saw it
    assert centre[..., 0].mean() > 200 and centre[..., 2].mean() < 150  # uniform map at its peak: red over gray
    assert outside.mean() < 0.6 * 200  # dimmed
    assert left * scale > 40
    with pytest.raises(ValueError, match="processor"):
        heatmaps.study_heatmaps(output, views=[wide, None])


def test_figures_add_a_colour_bar_and_the_caption_below_the_overlay(loaded):
    output = _study_output(loaded, synthetic_radiograph(seed=5), synthetic_radiograph(seed=8))
    result = heatmaps.study_heatmaps(output)
    overlays, figures, captions = result.overlays(), result.figures(), result.captions()
    assert captions[0][0].startswith("1. [frontal, ") and captions[0][0].endswith(LEARNED_SENTENCES[0])
    for row_overlays, row_figures in zip(overlays, figures):
        for overlay, figure in zip(row_overlays, row_figures):
            assert figure.width == overlay.width and figure.height > overlay.height + 30
            assert np.array_equal(np.asarray(figure)[: overlay.height], np.asarray(overlay))  # the overlay, untouched
            strip = np.asarray(figure, dtype=float)[overlay.height:]
            low = np.argwhere((np.abs(strip - [0, 0, 96]).sum(axis=-1) < 20))  # the bar's two ends
            high = np.argwhere((np.abs(strip - [255, 32, 0]).sum(axis=-1) < 20))
            assert len(low) and len(high) and low[:, 1].mean() < high[:, 1].mean()  # low on the left, high on the right
            assert (strip < 60).all(axis=-1).sum() > 50  # black text: labels and caption


def test_folders_of_different_ids_never_collide(loaded, tmp_path):
    """`a b` / `a_b` and `é` / `ü` used to share a folder; each id now has its own, and none overwrites another's."""
    result = heatmaps.study_heatmaps(_study_output(loaded, synthetic_radiograph(seed=5)))
    ids = ["a b", "a_b", "a/b", "\u00e9", "\u00fc", "e", "", "..", "x" * 300]
    folders = [heatmaps.save_heatmaps(result, tmp_path, study_id) for study_id in ids]
    assert len({folder.name for folder in folders}) == len(ids)
    for study_id, folder in zip(ids, folders):
        assert folder.parent == tmp_path and folder.is_dir()
        assert json.loads((folder / "sentences.json").read_text())["study_id"] == study_id
        assert len(folder.name) < 80 and folder.name == heatmaps.study_folder_name(study_id)
    assert heatmaps.study_folder_name("a b").startswith("a_b-") and heatmaps.study_folder_name("\u00e9").startswith("e-")
    assert heatmaps.study_folder_name("a b") == heatmaps.study_folder_name("a b")  # stable

    again = heatmaps.save_heatmaps(result, tmp_path, "a b")  # the same study again: its own folder, rewritten
    assert again == folders[0] and len(list(again.glob("*.png"))) == len(result.sentences)


def test_a_folder_holding_another_study_is_never_overwritten(loaded, tmp_path, monkeypatch):
    result = heatmaps.study_heatmaps(_study_output(loaded, synthetic_radiograph(seed=5)))
    first = heatmaps.save_heatmaps(result, tmp_path, "s1")
    before = {path.name: path.read_bytes() for path in first.iterdir()}
    monkeypatch.setattr(heatmaps, "study_folder_name", lambda study_id: first.name)  # as if two ids hashed alike
    with pytest.raises(FileExistsError, match="'s1'"):
        heatmaps.save_heatmaps(result, tmp_path, "s2")
    assert {path.name: path.read_bytes() for path in first.iterdir()} == before
    stranger = tmp_path / "other"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("not ours")
    monkeypatch.setattr(heatmaps, "study_folder_name", lambda study_id: "other")
    with pytest.raises(FileExistsError, match="not written for study"):
        heatmaps.save_heatmaps(result, tmp_path, "s3")
    assert [path.name for path in stranger.iterdir()] == ["notes.txt"]
