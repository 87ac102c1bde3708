"""Check that ``--protocol r2gen`` builds exactly the strings the R2Gen code scores (not a test).

R2Gen's evaluation scores, with pycocoevalcap, the references its tokenizer produces (clean, map rare words to
``<unk>``, cut the id sequence, decode) and the decoded model outputs. This script runs R2Gen's own tokenizer from
a clone of its repository next to ``xray_report.evaluation.nlg.R2GenVocabulary`` on every report of a split file and counts:

* equal vocabularies (same words);
* equal references, for every study of every split;
* decoded R2Gen outputs that our prediction cleaning leaves unchanged (a published predictions file passes as is).

Since both sides then call the same pycocoevalcap scorers on the same strings, equal strings mean equal scores.

Usage::

    git clone https://github.com/zhjohnchan/R2Gen /tmp/R2Gen
    python -m research.bench.check_r2gen_protocol --r2gen-repo /tmp/R2Gen --split-file annotation.json

Writes ``research/results/r2gen_protocol.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from xray_report.evaluation.nlg import R2GEN_DATASETS, R2GenVocabulary, read_split_reports

from .common import add_output_argument, write_results


def load_r2gen_tokenizer(r2gen_repo: Path, split_file: Path, dataset: str):
    """R2Gen's ``modules.tokenizers.Tokenizer`` built on ``split_file`` (imported from the clone, which is put on
    ``sys.path``: R2Gen is a folder of scripts, not an installable package)."""
    sys.path.insert(0, str(r2gen_repo))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)  # its regular expressions are not raw strings
        from modules.tokenizers import Tokenizer

    threshold, _ = R2GEN_DATASETS[dataset]
    arguments = argparse.Namespace(ann_path=str(split_file), threshold=threshold, dataset_name=dataset)
    return Tokenizer(arguments)


def compare(r2gen_repo: Path, split_file: Path, dataset: str) -> dict[str, object]:
    """The three counts of the module docstring."""
    tokenizer = load_r2gen_tokenizer(r2gen_repo, split_file, dataset)
    vocabulary = R2GenVocabulary.from_split_file(split_file, dataset)
    references_equal, total, predictions_unchanged, predictions = 0, 0, 0, 0
    differences = []
    for split, reports in read_split_reports(split_file).items():
        for report in reports:
            ids = tokenizer(report)
            theirs = tokenizer.decode(ids[: vocabulary.max_seq_length][1:])  # R2Gen cuts, then drops the start id
            ours = vocabulary.reference(report)
            total += 1
            references_equal += theirs == ours
            if theirs != ours and len(differences) < 10:
                differences.append({"split": split, "r2gen": theirs, "ours": ours})
            if split == "test":
                decoded = tokenizer.decode(ids[1:])
                predictions += 1
                predictions_unchanged += vocabulary.prediction(decoded) == decoded
    return {
        "split_file": split_file.name,
        "dataset": dataset,
        "vocabulary_size": {"r2gen": len(tokenizer.token2idx), "ours": len(vocabulary.words)},
        "vocabularies_equal": set(tokenizer.token2idx) == set(vocabulary.words),
        "references_equal": references_equal,
        "references": total,
        "decoded_outputs_unchanged": predictions_unchanged,
        "decoded_outputs": predictions,
        "first_differences": differences,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--r2gen-repo", type=Path, required=True, help="a clone of github.com/zhjohnchan/R2Gen")
    parser.add_argument("--split-file", type=Path, required=True, help="R2Gen annotation.json")
    parser.add_argument("--dataset", choices=sorted(R2GEN_DATASETS), default="iu_xray")
    add_output_argument(parser, "r2gen_protocol.json")
    args = parser.parse_args()
    result = compare(args.r2gen_repo, args.split_file, args.dataset)
    write_results(args.output, result)
    print(json.dumps({k: v for k, v in result.items() if k != "first_differences"}, indent=2))
    return 0 if result["references_equal"] == result["references"] and result["vocabularies_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
