"""Tokenizers built offline for the eval tests: a word-level one and a byte-level BPE."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from asynctls_hf.eval import ruler
from asynctls_hf.eval.words import ADJECTIVES, NOUNS, VERBS
from asynctls_hf.probes.tokenizer import SPECIAL_TOKENS, build_word_tokenizer, template_text


def _fast(tokenizer: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]", eos_token="[EOS]")


def build_bpe_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE (lossless) trained on synthetic text: haystack sentences, words, numbers."""
    corpus = [ruler.NOISE * 20, template_text(), " ".join(NOUNS + ADJECTIVES + VERBS)]
    numbers = [str(number * 7919 % 10**7) for number in range(500)]
    corpus += [" ".join(numbers[start : start + 50]) for start in range(0, 500, 50)]
    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(corpus, trainer)
    return _fast(tokenizer)


@pytest.fixture(scope="session")
def word_tokenizer() -> PreTrainedTokenizerFast:
    return build_word_tokenizer()


@pytest.fixture(scope="session")
def bpe_tokenizer() -> PreTrainedTokenizerFast:
    return build_bpe_tokenizer()


@pytest.fixture(scope="session", params=["word", "bpe"])
def tokenizer(request, word_tokenizer, bpe_tokenizer) -> PreTrainedTokenizerFast:
    return word_tokenizer if request.param == "word" else bpe_tokenizer


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, word_tokenizer) -> str:
    """A random 2-layer Qwen3 (4 query heads, 2 KV heads of width 16) and the word-level tokenizer, saved."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(0)
    config = Qwen3Config(
        vocab_size=len(word_tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        pad_token_id=word_tokenizer.pad_token_id,
        eos_token_id=word_tokenizer.eos_token_id,
        bos_token_id=None,
    )
    path = tmp_path_factory.mktemp("checkpoint") / "tiny-qwen3"
    Qwen3ForCausalLM(config).save_pretrained(path)
    word_tokenizer.save_pretrained(path)
    return str(path)
