"""Report tokenizers: GPT-2's (for a pretrained GPT-2 decoder) or one learnt from the training reports.

Special-token rules, the same for every tokenizer of the report model:

- `<|endoftext|>` is both the decoder start token (BOS) and the stop token (EOS), as in GPT-2;
- a dedicated pad token (`<|pad|>`) distinct from EOS, so EOS stays in every label and the model learns to stop;
- padding on the right.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, GPT2TokenizerFast, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from modeling.configuration_xray_report import check_special_token_ids

REPORT_PAD_TOKEN = "<|pad|>"
REPORT_UNK_TOKEN = "<|unk|>"
GPT2_END_OF_TEXT = "<|endoftext|>"
LEARNT_TOKENIZER_KINDS = ("word", "bpe")
"""`word`: one token per word or punctuation mark, words seen fewer than `min_frequency` times become `<|unk|>`
(the R2Gen family's vocabulary). `bpe`: byte-level BPE (GPT-2's scheme) learnt on the reports; no unknown words."""

_WORD_BOUNDARY = "\u2581"  # the word-start marker of the word-level tokenizer ("▁heart")


def check_report_tokenizer(tokenizer: PreTrainedTokenizerBase) -> None:
    """Raises `ValueError` unless the tokenizer has BOS and EOS and a pad token distinct from EOS (the report model's
    special-token rule, `modeling.configuration_xray_report.check_special_token_ids`)."""
    check_special_token_ids(tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)


def load_report_tokenizer(name_or_path: str | os.PathLike) -> PreTrainedTokenizerBase:
    """Loads a saved or GPT-2-family tokenizer and applies the special-token rules (`prepare_report_tokenizer`).

    Args:
        name_or_path: a hub id (e.g. `"gpt2"`), a directory saved with `save_pretrained` (a learnt tokenizer
            included), or a directory holding only GPT-2's original `vocab.json` and `merges.txt`.
    """
    path = Path(name_or_path)
    if path.is_dir() and not (path / "tokenizer.json").exists() and (path / "vocab.json").exists():
        tokenizer = _gpt2_from_vocab_files(path / "vocab.json", path / "merges.txt")
    else:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    return prepare_report_tokenizer(tokenizer)


def train_report_tokenizer(
    reports: Iterable[str], kind: str = "word", vocab_size: int = 5000, min_frequency: int = 3
) -> PreTrainedTokenizerFast:
    """Learns a report tokenizer from training reports with the `tokenizers` library.

    Decoding gives back the text as written (casing kept, no space before punctuation), up to runs of whitespace
    and, for `kind="word"`, words outside the vocabulary (they encode to `<|unk|>`, which generation never emits).

    Args:
        reports: the training split's report texts (never validation or test: that would leak their words).
        kind: `"word"` or `"bpe"` (see `LEARNT_TOKENIZER_KINDS`).
        vocab_size: the largest vocabulary, special tokens included.
        min_frequency: a word (`word`) or merge (`bpe`) seen fewer times is not learnt.

    Raises:
        ValueError: an unknown `kind`, or no report text to learn from.
    """
    if kind not in LEARNT_TOKENIZER_KINDS:
        raise ValueError(f"tokenizer kind must be one of {LEARNT_TOKENIZER_KINDS}, got {kind!r}")
    texts = [text for text in reports if isinstance(text, str) and text.strip()]
    if not texts:
        raise ValueError("cannot learn a report tokenizer from zero non-empty reports")
    special = [GPT2_END_OF_TEXT, REPORT_PAD_TOKEN] + ([REPORT_UNK_TOKEN] if kind == "word" else [])
    if kind == "word":
        backend = Tokenizer(models.WordLevel(unk_token=REPORT_UNK_TOKEN))
        backend.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Metaspace(replacement=_WORD_BOUNDARY, prepend_scheme="always"),
                pre_tokenizers.Punctuation(behavior="isolated"),
            ]
        )
        backend.decoder = decoders.Metaspace(replacement=_WORD_BOUNDARY, prepend_scheme="always")
        trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=special)
    else:
        backend = Tokenizer(models.BPE())
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=special,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )
    backend.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=GPT2_END_OF_TEXT,
        eos_token=GPT2_END_OF_TEXT,
        pad_token=REPORT_PAD_TOKEN,
        unk_token=REPORT_UNK_TOKEN if kind == "word" else None,
    )
    return prepare_report_tokenizer(tokenizer)


def build_byte_level_tokenizer() -> PreTrainedTokenizerBase:
    """A GPT-2 byte-level tokenizer with no merges (one token per byte), built without any file or data.

    For tests of the model's mechanics only: sequences are ~4x longer than with a real vocabulary.
    """
    vocab = {symbol: index for index, symbol in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    vocab[GPT2_END_OF_TEXT] = len(vocab)
    tokenizer = GPT2TokenizerFast(vocab=vocab, merges=[], unk_token=GPT2_END_OF_TEXT)
    return prepare_report_tokenizer(tokenizer)


def prepare_report_tokenizer(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Applies the special-token rules (in place): BOS = EOS when BOS is missing, a pad token distinct from EOS,
    right padding.

    With pad == EOS and padding masked out of the labels, the EOS is masked too and the model never learns to
    stop; a separate pad token keeps EOS in every target.
    """
    if tokenizer.eos_token_id is None:
        raise ValueError(f"{type(tokenizer).__name__} has no EOS token; the report model needs one to stop.")
    if tokenizer.bos_token_id is None:
        tokenizer.add_special_tokens({"bos_token": tokenizer.eos_token})
    if tokenizer.pad_token_id is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        tokenizer.add_special_tokens({"pad_token": REPORT_PAD_TOKEN})
    tokenizer.padding_side = "right"
    check_report_tokenizer(tokenizer)
    return tokenizer


def _gpt2_from_vocab_files(vocab_file: Path, merges_file: Path) -> GPT2TokenizerFast:
    # GPT2TokenizerFast(vocab_file=..., merges_file=...) silently builds an empty tokenizer in transformers 5:
    # pass the parsed vocabulary and merges instead.
    if not merges_file.exists():
        raise FileNotFoundError(f"{merges_file}: GPT-2 merges file not found next to {vocab_file.name}.")
    vocab = json.loads(vocab_file.read_text(encoding="utf-8"))
    merges = [
        tuple(line.split())
        for line in merges_file.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#version")
    ]
    bad = [index for index, merge in enumerate(merges) if len(merge) != 2]
    if bad:
        raise ValueError(f"{merges_file}: line(s) {bad[:5]} are not 'left right' merge pairs.")
    return GPT2TokenizerFast(vocab=vocab, merges=merges)


__all__ = [
    "LEARNT_TOKENIZER_KINDS",
    "REPORT_PAD_TOKEN",
    "REPORT_UNK_TOKEN",
    "build_byte_level_tokenizer",
    "check_report_tokenizer",
    "load_report_tokenizer",
    "prepare_report_tokenizer",
    "train_report_tokenizer",
]
