"""What the benchmark scripts share (research/bench/common.py): the shuffled-images control, decoding several
candidates through the report pipeline, and the results files."""

from __future__ import annotations

import argparse
import json

import numpy as np

from conftest import build_tiny_report_model, synthetic_radiograph, tiny_image_processor
from research.bench import common


def test_shuffled_images_move_together_and_never_stay():
    import datasets

    from research.bench.common import derangement, shuffle_images_across_studies

    permutation = derangement(50, seed=3)
    assert sorted(permutation.tolist()) == list(range(50))
    assert not np.any(permutation == np.arange(50))
    table = datasets.Dataset.from_dict({
        "study_id": [str(i) for i in range(6)],
        "frontal": [f"f{i}" for i in range(6)],
        "lateral": [f"l{i}" for i in range(6)],
        "report": [f"r{i}" for i in range(6)],
    })
    shuffled = shuffle_images_across_studies(table, seed=0)
    assert shuffled["report"] == table["report"] and shuffled["study_id"] == table["study_id"]
    assert all(f[1:] == l[1:] for f, l in zip(shuffled["frontal"], shuffled["lateral"]))
    assert all(f[1:] != s for f, s in zip(shuffled["frontal"], shuffled["study_id"]))


def test_candidates_are_the_pipelines_reports(tmp_path, report_tokenizer):
    """Every finished beam comes through the pipeline's preprocessing and decoding: the best one is the report the
    pipeline itself writes with the same settings, and the beams come best first."""
    from PIL import Image

    from processing import XrayReportProcessor
    from xray_report.inference.generation import LoadedStudy, generate_for_studies
    from xray_report.inference.loading import load_model_and_processor, report_pipeline
    from xray_report.inference.studies import Study

    build_tiny_report_model(report_tokenizer).save_pretrained(tmp_path / "model")
    XrayReportProcessor(tiny_image_processor(), report_tokenizer).save_pretrained(tmp_path / "model")
    studies = [LoadedStudy(Study(str(seed), tmp_path / f"{seed}.png"),
                           [Image.fromarray(synthetic_radiograph(seed=seed, bright_spot=seed % 2 == 0)),
                            Image.fromarray(synthetic_radiograph(seed=seed + 10)) if seed != 2 else None])
               for seed in range(3)]
    settings = {"num_beams": 3, "max_new_tokens": 6}
    found = common.candidate_reports(tmp_path / "model", studies, 3, batch_size=2, **settings)
    assert [len(item.texts) for item in found] == [3, 3, 3]
    assert all(item.scores == sorted(item.scores, reverse=True) for item in found)
    pipe = report_pipeline(*load_model_and_processor(tmp_path / "model"))
    written = [output["generated_text"] for output in generate_for_studies(pipe, studies, batch_size=2, **settings)]
    assert [item.texts[0] for item in found] == written
    sampled = common.candidate_reports(tmp_path / "model", studies, 2, do_sample=True, max_new_tokens=4)
    assert [len(item.texts) for item in sampled] == [2, 2, 2] and all(item.scores is None for item in sampled)


def test_results_files_go_to_research_results(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    common.add_output_argument(parser, "example.json")
    assert parser.parse_args([]).output == common.REPO_ROOT / "research" / "results" / "example.json"
    path = common.write_results(tmp_path / "out" / "example.json", {"figure": 0.5})
    assert json.loads(path.read_text()) == {"figure": 0.5} and path.read_text().endswith("}\n")
    assert f"wrote {path}" in capsys.readouterr().out
    assert {"cpu_count", "torch_threads", "cpu_capability", "torch"} <= set(common.machine_facts())
