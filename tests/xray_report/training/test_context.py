"""Training a model that reads clinical context: the collator's prompts and context dropout, the trainer keeping the
prompts out of the forward and generating after them, and the run's record and card saying how context is used."""

from __future__ import annotations

import csv
import functools
import json
import random
from pathlib import Path

import pytest
from PIL import Image

from conftest import synthetic_radiograph, tiny_image_processor
from processing import LABEL_IGNORE_INDEX, XrayReportProcessor
from training_fixtures import run, tiny_argv, write_studies
from xray_report.training.collator import PROMPT_INPUTS, XrayReportCollator


def _rows(indications):
    image = Image.fromarray(synthetic_radiograph(seed=3))
    return [{"frontal": image, "lateral": None, "report": "Lungs clear.", "indication": text} for text in indications]


@pytest.fixture
def processor(byte_tokenizer):
    return XrayReportProcessor(tiny_image_processor(), byte_tokenizer)


def test_the_collator_puts_each_indication_before_its_report_and_gives_generation_prompts(processor, byte_tokenizer):
    collator = XrayReportCollator(processor, use_previous_image=False, context_max_tokens=6)
    batch = collator(_rows(["Cough", None]))
    bos = byte_tokenizer.bos_token_id
    cough = byte_tokenizer("Cough", add_special_tokens=False)["input_ids"]
    assert batch["decoder_input_ids"][0, : len(cough) + 2].tolist() == [bos, *cough, bos]
    assert (batch["labels"][0, : len(cough) + 1] == LABEL_IGNORE_INDEX).all()
    assert batch["prompt_input_ids"].shape == (2, 8)
    assert batch["prompt_input_ids"][0, -len(cough) - 2:].tolist() == [bos, *cough, bos]
    assert batch["prompt_attention_mask"][1].tolist() == [0] * 7 + [1]  # no indication: [BOS] alone
    plain = XrayReportCollator(processor, use_previous_image=False)(_rows(["Cough", None]))
    assert not set(PROMPT_INPUTS) & set(plain)  # a model without context gets no prompts at all
    assert batch["labels"][1].tolist()[: plain["labels"].shape[1]] == plain["labels"][1].tolist()


def test_context_dropout_leaves_out_that_share_of_indications(processor):
    rows = _rows(["Cough"] * 400)
    kept = []
    for rate in (0.0, 0.3, 1.0):
        random.seed(0)
        collator = XrayReportCollator(processor, use_previous_image=False, context_max_tokens=6, context_dropout=rate)
        mask = collator(rows)["prompt_attention_mask"]
        kept.append(float((mask.sum(dim=1) > 1).float().mean()))
    assert kept[0] == 1.0 and kept[2] == 0.0 and 0.62 < kept[1] < 0.78


def _studies_with_indications(data_dir: Path, count: int) -> Path:
    """Synthetic studies whose indication names their finding or says nothing (so context is there to read)."""
    write_studies(data_dir, count)
    path = data_dir / "indiana_reports.csv"
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for index, row in enumerate(rows):
        row["indication"] = ["Cough.", "XXXX-year-old with chest pain.", ""][index % 3]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return data_dir


def test_a_context_run_generates_after_each_prompt_and_records_how_it_reads_context(tmp_path, monkeypatch):
    from modeling import XrayReportModel
    from xray_report.training.record import provenance_lines, read_training_record

    data_dir = _studies_with_indications(tmp_path / "data", 24)
    prompts_seen = []
    original = XrayReportModel.generate

    @functools.wraps(original)
    def recording(self, *args, **kwargs):
        prompts_seen.append(kwargs.get("decoder_input_ids"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(XrayReportModel, "generate", recording)
    forwards = []
    original_forward = XrayReportModel.forward

    @functools.wraps(original_forward)  # generate checks its keywords against the forward's signature
    def forward(self, *args, **kwargs):
        forwards.append(sorted(kwargs))
        return original_forward(self, *args, **kwargs)

    monkeypatch.setattr(XrayReportModel, "forward", forward)
    result = run(tiny_argv(data_dir, tmp_path / "model", "--max_steps", "3", "--context_max_tokens", "10",
                           "--context_dropout", "0.5", "--do_predict", "true", "--max_new_tokens", "8"))
    assert not any(set(PROMPT_INPUTS) & set(names) for names in forwards)  # prompts never reach the forward
    assert prompts_seen and all(p is not None and p.shape[1] == 12 for p in prompts_seen)
    assert any(bool((p[:, :-1] != p[0, 0]).any()) for p in prompts_seen)  # some prompt holds an indication
    predictions = [json.loads(line) for line in result.predictions_path.read_text().splitlines()]
    assert all("Cough" not in row["generated"] and "chest pain" not in row["generated"] for row in predictions)
    record = read_training_record(tmp_path / "model")
    assert (record.context_max_tokens, record.context_dropout) == (10, 0.5)
    assert provenance_lines(record)[-1].startswith("Clinical context: reads the study's indication (XXXX masks "
                                                   "removed, its first 10 tokens)")
    assert "trained with 50% of indications left out" in provenance_lines(record)[-1]


def test_a_model_without_context_says_so_in_its_provenance():
    from xray_report.training.record import context_line

    assert context_line(0, 0.0) == "Clinical context: not read (an indication given with a study is ignored, with a note)"


def test_context_options_are_checked_before_any_data_is_built(tmp_path):
    from xray_report.training import parse_config
    from xray_report.training.arguments import ConfigError

    with pytest.raises(ConfigError, match="context_dropout must be between 0 and 1"):
        parse_config(tiny_argv(tmp_path, tmp_path / "m", "--context_dropout", "1.5"))
    with pytest.raises(Exception, match="leaves no room for a report"):
        model_args, _, _ = parse_config(tiny_argv(tmp_path, tmp_path / "m", "--context_max_tokens", "300"))
        model_args.report_config()


def test_a_record_written_before_context_was_recorded_claims_nothing_about_it():
    from xray_report.training.record import context_line

    assert context_line(None, 0.0).startswith("Clinical context: not recorded")
