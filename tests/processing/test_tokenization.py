"""Report tokenizers learnt from the training reports: special tokens, clean decoding, unknown words, save / load."""

from __future__ import annotations

import json

import pytest

from conftest import run_without_project
from processing import REPORT_PAD_TOKEN, REPORT_UNK_TOKEN, train_report_tokenizer

REPORTS = [
    "The heart is enlarged. There is a focal opacity in the left lower lobe. No pneumothorax.",
    "Heart size is normal, the lungs are clear. No acute cardiopulmonary abnormality.",
    "Stable 4.5 cm nodule (right upper lobe); XXXX-XXXX. No effusion!",
    "The heart is normal. The lungs are clear. No pneumothorax.",
]


@pytest.mark.parametrize("kind", ["word", "bpe"])
def test_special_token_rules(kind):
    tokenizer = train_report_tokenizer(REPORTS, kind=kind, vocab_size=300, min_frequency=1)
    assert tokenizer.bos_token == tokenizer.eos_token == "<|endoftext|>"
    assert tokenizer.pad_token == REPORT_PAD_TOKEN and tokenizer.pad_token_id != tokenizer.eos_token_id
    assert tokenizer.padding_side == "right"
    ids = tokenizer(REPORTS[0], add_special_tokens=False)["input_ids"]
    assert tokenizer.eos_token_id not in ids and tokenizer.pad_token_id not in ids


@pytest.mark.parametrize("kind", ["word", "bpe"])
def test_decoding_gives_the_text_back_as_written(kind):
    tokenizer = train_report_tokenizer(REPORTS, kind=kind, vocab_size=300, min_frequency=1)
    for report in REPORTS:
        ids = tokenizer(report, add_special_tokens=False)["input_ids"]
        assert tokenizer.decode(ids + [tokenizer.eos_token_id], skip_special_tokens=True) == report


def test_word_level_vocabulary_has_words_and_punctuation_and_an_unknown_token():
    tokenizer = train_report_tokenizer(REPORTS, kind="word", min_frequency=2)
    vocab = tokenizer.get_vocab()
    assert {"\u2581heart", "\u2581lungs", ".", "\u2581No"} <= set(vocab) and "," not in vocab  # "," is seen once
    assert "\u2581enlarged" not in vocab  # seen once, below min_frequency
    ids = tokenizer("The heart is enlarged.", add_special_tokens=False)["input_ids"]
    assert ids[3] == tokenizer.unk_token_id and tokenizer.unk_token == REPORT_UNK_TOKEN
    assert len(ids) == 5  # The, heart, is, <unk>, .


def test_generation_never_emits_padding_or_the_unknown_token():
    from modeling import make_generation_config

    tokenizer = train_report_tokenizer(REPORTS, kind="word", min_frequency=2)
    config = make_generation_config(tokenizer)
    assert sorted(config.suppress_tokens) == sorted([tokenizer.pad_token_id, tokenizer.unk_token_id])
    bpe = train_report_tokenizer(REPORTS, kind="bpe", vocab_size=300, min_frequency=1)
    assert make_generation_config(bpe).suppress_tokens == [bpe.pad_token_id]


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="kind"):
        train_report_tokenizer(REPORTS, kind="sentencepiece")
    with pytest.raises(ValueError, match="zero non-empty reports"):
        train_report_tokenizer(["", "  "])


@pytest.mark.parametrize("kind", ["word", "bpe"])
def test_saved_with_the_processor_and_loaded_in_a_fresh_process(tmp_path, kind):
    """AutoProcessor in-process, and with trust_remote_code in a process that cannot import the project."""
    from transformers import AutoProcessor

    from conftest import tiny_image_processor
    from processing import XrayReportProcessor

    tokenizer = train_report_tokenizer(REPORTS, kind=kind, vocab_size=300, min_frequency=1)
    processor = XrayReportProcessor(tiny_image_processor(), tokenizer)
    processor.save_pretrained(tmp_path)
    assert (tmp_path / "tokenizer.json").exists()
    labels = processor(text_target=REPORTS)["labels"].tolist()

    loaded = AutoProcessor.from_pretrained(tmp_path)
    assert loaded(text_target=REPORTS)["labels"].tolist() == labels
    assert loaded.tokenizer.pad_token_id == tokenizer.pad_token_id

    code = f"""
import json
from transformers import AutoProcessor
processor = AutoProcessor.from_pretrained({str(tmp_path)!r}, trust_remote_code=True)
labels = processor(text_target={REPORTS!r})["labels"]
print(json.dumps({{"labels": labels.tolist(), "decoded": processor.batch_decode(labels),
                   "pad": processor.tokenizer.pad_token_id, "eos": processor.tokenizer.eos_token_id}}))
"""
    result = json.loads(run_without_project(code, tmp_path).strip().splitlines()[-1])
    assert result["labels"] == labels
    assert result["decoded"] == REPORTS
    assert result["pad"] == tokenizer.pad_token_id != result["eos"]


def test_training_learns_the_tokenizer_from_the_training_split_only(tmp_path):
    """No decoder or tokenizer named: the run learns one from the training reports and saves it with the model."""
    from xray_report.training import build_tokenizer
    from xray_report.training.arguments import ModelArguments

    args = ModelArguments(encoder_type="resnet18_multi_image", image_size=64, tokenizer_min_frequency=1)
    tokenizer = build_tokenizer(args, ["The lungs are clear.", "Small effusion."])
    vocab = tokenizer.get_vocab()
    assert "\u2581effusion" in vocab and "\u2581pneumothorax" not in vocab
    with pytest.raises(ValueError, match="no training reports"):
        build_tokenizer(args, [])


def test_prepare_gives_a_pad_equal_to_eos_tokenizer_its_own_pad():
    from processing import build_byte_level_tokenizer, prepare_report_tokenizer

    tokenizer = build_byte_level_tokenizer()
    tokenizer.pad_token = tokenizer.eos_token  # the usual GPT-2 recipe, which hides EOS from the loss
    assert tokenizer.pad_token_id == tokenizer.eos_token_id
    prepared = prepare_report_tokenizer(tokenizer)
    assert prepared.pad_token == REPORT_PAD_TOKEN and prepared.pad_token_id != prepared.eos_token_id
    assert prepared.bos_token_id == prepared.eos_token_id and prepared.padding_side == "right"
    ids = prepared(["a b", "a b c d"], padding=True)["input_ids"]
    assert ids[0][-1] == prepared.pad_token_id  # padding uses the new token, never EOS


def _distinct_words(count: int) -> list[str]:
    """`count` different lowercase words (base-26 spellings), none a prefix-free accident of the others."""
    words = []
    for number in range(count):
        letters = ""
        number += 26 * 26  # three letters at least
        while number:
            number, digit = divmod(number, 26)
            letters += chr(ord("a") + digit)
        words.append(letters)
    return words


def test_word_level_defaults_are_a_minimum_count_of_3_and_at_most_5000_tokens():
    thrice, twice = _distinct_words(5100), ["rarely", "seldom"]
    tokenizer = train_report_tokenizer([" ".join(thrice)] * 3 + [" ".join(twice)] * 2)
    vocab = tokenizer.get_vocab()
    assert len(tokenizer) == 5000 and "\u2581rarely" not in vocab and "\u2581seldom" not in vocab
    assert train_report_tokenizer(["a b c d e f g h"] * 3, vocab_size=8).vocab_size == 8


def test_bpe_stays_within_its_vocabulary_size_special_tokens_included():
    corpus = [" ".join(_distinct_words(3000))] * 3
    tokenizer = train_report_tokenizer(corpus, kind="bpe", vocab_size=400, min_frequency=2)
    assert len(tokenizer) == 400
    assert REPORT_UNK_TOKEN not in tokenizer.get_vocab() and tokenizer.unk_token is None  # bytes cover every text
    no_merges = train_report_tokenizer(corpus, kind="bpe", vocab_size=400, min_frequency=10**6)
    assert len(no_merges) == 256 + 2  # every byte, EOS and pad: no pair is seen a million times


def test_bpe_encodes_characters_it_never_saw_and_decodes_them_back():
    tokenizer = train_report_tokenizer(REPORTS, kind="bpe", vocab_size=300, min_frequency=1)
    unseen = "Größe 4 × 5 mm, Ödem — ¿nuevo? 肺"
    ids = tokenizer(unseen, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == unseen
    assert all(len(token) < 8 for token in tokenizer.convert_ids_to_tokens(ids))  # pieces, not one giant token


def test_prepare_keeps_a_distinct_start_token_and_refuses_a_tokenizer_without_eos():
    from transformers import PreTrainedTokenizerFast

    from processing import prepare_report_tokenizer

    base = train_report_tokenizer(REPORTS, kind="word", min_frequency=1)
    backend = base.backend_tokenizer
    with_bos = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="<|endoftext|>")
    prepared = prepare_report_tokenizer(with_bos)
    assert prepared.bos_token == "<s>" and prepared.eos_token == "<|endoftext|>"  # a start token of its own is kept
    assert prepared.pad_token == REPORT_PAD_TOKEN
    without_bos = prepare_report_tokenizer(PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|endoftext|>"))
    assert without_bos.bos_token == without_bos.eos_token == "<|endoftext|>"
    no_eos = PreTrainedTokenizerFast(tokenizer_object=backend)
    with pytest.raises(ValueError, match=f"^{type(no_eos).__name__} has no EOS token; the report model needs one to stop.$"):
        prepare_report_tokenizer(no_eos)


def _write_gpt2_vocabulary_files(folder, corpus: list[str]):
    """GPT-2's original file pair (vocab.json, merges.txt with its `#version` header), learnt on `corpus`;
    returns the `tokenizers` tokenizer the files came from, as the reference encoding."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    reference = Tokenizer(models.BPE())
    reference.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    reference.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    reference.train_from_iterator(corpus, trainer)
    folder.mkdir(parents=True, exist_ok=True)
    reference.model.save(str(folder))
    return reference


def test_gpt2_vocabulary_files_load_with_their_merges(tmp_path):
    """A folder with only vocab.json and merges.txt (GPT-2's original release) encodes as the files say."""
    from transformers import GPT2TokenizerFast

    from processing import load_report_tokenizer

    reference = _write_gpt2_vocabulary_files(tmp_path, REPORTS * 5)
    merges = tmp_path / "merges.txt"
    lines = merges.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("#version")
    merges.write_text("\n".join([*lines[:3], "", "   ", *lines[3:], ""]) + "\n", encoding="utf-8")  # blank lines

    tokenizer = load_report_tokenizer(tmp_path)
    assert isinstance(tokenizer, GPT2TokenizerFast)
    for text in [*REPORTS, "heart lungs opacity"]:
        ids = tokenizer(text)["input_ids"]
        assert ids == reference.encode(text).ids
        assert tokenizer.decode(ids) == text
    assert len(tokenizer(" heart")["input_ids"]) == 1  # the merges were applied: one token, not six bytes
    assert tokenizer.eos_token == tokenizer.bos_token == "<|endoftext|>"
    assert tokenizer.pad_token == REPORT_PAD_TOKEN and tokenizer.pad_token_id == reference.get_vocab_size()


def test_gpt2_vocabulary_files_with_a_missing_or_malformed_merges_file_are_refused(tmp_path):
    from processing import load_report_tokenizer

    _write_gpt2_vocabulary_files(tmp_path, REPORTS)
    merges = tmp_path / "merges.txt"
    lines = merges.read_text(encoding="utf-8").splitlines()
    merges.write_text("\n".join([lines[0], *(f"{line} extra" for line in lines[1:8]), *lines[8:]]), encoding="utf-8")
    with pytest.raises(ValueError, match=r"merges\.txt: line\(s\) \[0, 1, 2, 3, 4\] are not 'left right' merge pairs"):
        load_report_tokenizer(tmp_path)
    merges.unlink()
    with pytest.raises(FileNotFoundError, match=r"merges\.txt: GPT-2 merges file not found next to vocab\.json"):
        load_report_tokenizer(tmp_path)


def test_a_saved_tokenizer_wins_over_gpt2_vocabulary_files_in_the_same_folder(tmp_path):
    """save_pretrained's tokenizer.json is the tokenizer; a stray vocab.json / merges.txt pair beside it is not."""
    from processing import load_report_tokenizer

    learnt = train_report_tokenizer(REPORTS, kind="word", min_frequency=1)
    learnt.save_pretrained(tmp_path)
    _write_gpt2_vocabulary_files(tmp_path, REPORTS)
    loaded = load_report_tokenizer(tmp_path)
    assert type(loaded) is type(learnt)
    assert loaded.get_vocab() == learnt.get_vocab()
    assert loaded(REPORTS)["input_ids"] == learnt(REPORTS)["input_ids"]
    assert loaded.pad_token_id == learnt.pad_token_id != loaded.eos_token_id


def test_the_real_gpt2_vocabulary_gives_gpt2s_ids():
    from conftest import require_shared
    from processing import load_report_tokenizer

    tokenizer = load_report_tokenizer(require_shared("tokenizers", "gpt2"))
    assert tokenizer("Hello world")["input_ids"] == [15496, 995]
    assert tokenizer.eos_token_id == tokenizer.bos_token_id == 50256
    assert tokenizer.pad_token == REPORT_PAD_TOKEN and tokenizer.pad_token_id == 50257
