"""GPT-2 tokenizer set up for report generation: a dedicated pad token, EOS kept as the stop signal."""

from __future__ import annotations

import json
import os
from pathlib import Path

from transformers import AutoTokenizer, GPT2TokenizerFast, PreTrainedTokenizerBase

REPORT_PAD_TOKEN = "<|pad|>"
GPT2_END_OF_TEXT = "<|endoftext|>"


def load_report_tokenizer(name_or_path: str | os.PathLike) -> PreTrainedTokenizerBase:
    """Loads a GPT-2-family tokenizer and gives it a dedicated pad token (see `prepare_report_tokenizer`).

    Args:
        name_or_path: a hub id (e.g. `"gpt2"`), a directory saved with `save_pretrained`, or a directory holding
            only GPT-2's original `vocab.json` and `merges.txt`.
    """
    path = Path(name_or_path)
    if path.is_dir() and not (path / "tokenizer.json").exists() and (path / "vocab.json").exists():
        tokenizer = _gpt2_from_vocab_files(path / "vocab.json", path / "merges.txt")
    else:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    return prepare_report_tokenizer(tokenizer)


def build_byte_level_tokenizer() -> PreTrainedTokenizerBase:
    """A GPT-2 byte-level tokenizer with no merges (one token per byte), built without any download.

    For offline demos and tests only: sequences are ~4x longer than with GPT-2's real vocabulary.
    """
    from tokenizers.pre_tokenizers import ByteLevel

    vocab = {symbol: index for index, symbol in enumerate(sorted(ByteLevel.alphabet()))}
    vocab[GPT2_END_OF_TEXT] = len(vocab)
    tokenizer = GPT2TokenizerFast(vocab=vocab, merges=[], unk_token=GPT2_END_OF_TEXT)
    return prepare_report_tokenizer(tokenizer)


def prepare_report_tokenizer(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Adds a pad token distinct from EOS (in place) and pads on the right.

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


__all__ = ["REPORT_PAD_TOKEN", "build_byte_level_tokenizer", "load_report_tokenizer", "prepare_report_tokenizer"]
