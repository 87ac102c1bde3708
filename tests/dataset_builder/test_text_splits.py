"""Unit tests: report text handling and deterministic splits."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from dataset_builder.splits import assign_splits, canonical_split_name, iu_uid_from_id, read_r2gen_split_file
from dataset_builder.text import apply_mask_policy, compose_report, normalize_whitespace, r2gen_normalize


def test_normalize_whitespace_collapses_all_kinds_and_handles_none() -> None:
    assert normalize_whitespace("  The heart\n\tis  normal.  ") == "The heart is normal."
    assert normalize_whitespace(None) == ""


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("keep", "Normal chest x-XXXX. There are no XXXX of a pleural effusion."),
        ("drop", "Normal chest x. There are no of a pleural effusion."),
        ("replace", "Normal chest x-<deid>. There are no <deid> of a pleural effusion."),
    ],
)
def test_mask_policy(policy: str, expected: str) -> None:
    text = "Normal chest x-XXXX. There are no XXXX of a pleural effusion."
    assert apply_mask_policy(text, policy) == expected


def test_mask_drop_tidies_runs_of_masks_and_leaves_other_words() -> None:
    assert apply_mask_policy("Inferior XXXX XXXX XXXX. Xray is fine.", "drop") == "Inferior. Xray is fine."
    assert apply_mask_policy("XXXX-year-old male, XXXX.", "replace", "[M]") == "[M]-year-old male, [M]."


def test_mask_policy_rejects_unknown_value() -> None:
    with pytest.raises(ValueError):
        apply_mask_policy("XXXX", "hide")


def test_compose_report_sections() -> None:
    assert compose_report("F.", "I.", "findings_impression") == "F. I."
    assert compose_report("", "I.", "findings_impression") == "I."
    assert compose_report("F.", "I.", "findings") == "F."
    assert compose_report("F.", "I.", "impression") == "I."


def test_r2gen_normalize_matches_the_described_procedure() -> None:
    text = "1. Bullous emphysema, (left). 2. No  effusion.. Normal chest x-XXXX."
    assert r2gen_normalize(text) == "bullous emphysema left . no effusion . normal chest xxxxx ."
    assert r2gen_normalize("...") == ""


def test_assign_splits_exact_counts_deterministic_and_order_independent() -> None:
    groups = [str(i) for i in range(1000)]
    first = assign_splits(groups, (0.7, 0.1, 0.2), seed=1)
    assert Counter(first.values()) == {"train": 700, "validation": 100, "test": 200}
    assert assign_splits(list(reversed(groups)), (0.7, 0.1, 0.2), seed=1) == first
    other = assign_splits(groups, (0.7, 0.1, 0.2), seed=2)
    assert other != first and Counter(other.values()) == Counter(first.values())


def test_assign_splits_is_pinned_across_machines() -> None:
    # SHA-256 based: these values must never change (cross-run, cross-machine stability).
    split = assign_splits([str(i) for i in range(10)], (0.5, 0.2, 0.3), seed=1234)
    assert [split[str(i)] for i in range(10)] == PINNED_SPLIT


PINNED_SPLIT = ["train", "validation", "test", "train", "train", "train", "test", "test", "validation", "train"]


def test_split_names_and_uid_mapping() -> None:
    assert canonical_split_name("val") == "validation"
    assert canonical_split_name("validate") == "validation"
    with pytest.raises(ValueError, match="unknown split"):
        canonical_split_name("holdout")
    assert iu_uid_from_id("CXR2384_IM-0942") == "2384"
    assert iu_uid_from_id("CXR7_IM-2263-1001") == "7"
    assert iu_uid_from_id("0007_IM-2263-1001.dcm.png") == "7"
    with pytest.raises(ValueError):
        iu_uid_from_id("IM-0942")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", r"cannot read the split file: not valid JSON at line 1"),
        ('{"train": [{"id": "CXR1_IM-1", "image_path": []}]}', r"train\[0\]: field 'report'"),
        ('{"train": [{"id": "IM-1", "report": "x", "image_path": []}]}', r"train\[0\].*uid"),
        ('{"val": [{"id": "CXR1_IM-1", "report": "x", "image_path": [], "split": "test"}]}', r"val\[0\]: split field"),
        ('{"train": [{"id": "CXR1_IM-1", "report": "x", "image_path": []}],'
         ' "test": [{"id": "CXR1_IM-2", "report": "y", "image_path": []}]}', r"test\[0\]: uid 1 .* twice"),
        ("[]", r"expected an object with split lists"),
        ('[{"id": "CXR1_IM-1"}]', r"expected an object with split lists"),
        ("{}", r"expected an object with split lists"),
        ('{"train": {"id": "CXR1_IM-1"}}', r"'train' must be a list of entries"),
        ('{"test": ["CXR1_IM-1"]}', r"test\[0\]: entry must be an object, got str"),
    ],
)
def test_split_file_errors_name_file_and_entry(tmp_path, content: str, message: str) -> None:
    path = tmp_path / "annotation.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        read_r2gen_split_file(path)
    assert str(path) in str(info.value)


def test_split_file_reads_ids_as_uids(tmp_path) -> None:
    path = tmp_path / "annotation.json"
    path.write_text(json.dumps({"train": [{"id": "CXR12_IM-1", "report": "a", "image_path": ["x/0.png"]}],
                                "val": [{"id": "CXR3_IM-9", "report": "b", "image_path": []}]}))
    assert read_r2gen_split_file(path) == {"12": "train", "3": "validation"}
