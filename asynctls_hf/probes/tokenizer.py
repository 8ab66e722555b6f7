"""The probes' word-level tokenizer, built offline from the RULER templates and the word lists."""

from __future__ import annotations

import string

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from asynctls_hf.eval import ruler
from asynctls_hf.eval.words import ADJECTIVES, NOUNS, VERBS

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[EOS]"]
ALPHABET = string.ascii_letters + string.digits + string.punctuation


def template_text() -> str:
    """Every RULER template string, joined: the words a prompt is built from besides the word lists."""
    return " ".join(value for name, value in vars(ruler).items() if name.isupper() and isinstance(value, str))


def vocabulary(tokenizer) -> list[str]:
    """`tokenizer`'s tokens in id order."""
    return tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))


DIGIT_GROUP = 3  # digits per token with build_word_tokenizer(digit_groups=True)


def build_word_tokenizer(hyphen_nouns: bool = False, digit_groups: bool = False) -> PreTrainedTokenizerFast:
    """Word-level: every word of the word lists and RULER templates is one token.

    Other strings (numbers, UUIDs, variable names, coded words) fall back to single characters, WordPiece-style
    ("##" marks a continuation), so that they decode back exactly; words are split on whitespace only, so the
    tokens of a text joined by whitespace are the tokens of its parts, concatenated.

    A RULER word key ("dry-picture") is then its adjective and the noun spelled out ("dry", "##-", "##p", ...: 9
    tokens), and copying a key means copying a run of single characters that every other key's noun shares. With
    `hyphen_nouns` each noun after a hyphen is one more token ("##-picture"), appended after the others so that
    every other token keeps its id: a key is two tokens, as a subword tokenizer gives a pretrained model a few.

    With `digit_groups` every run of three digits is one token as well ("372", "##524"), appended after those: a
    RULER value "3725247" is "372", "##524", "##7" instead of seven digits. Its first token then tells the four values
    of a multi-value answer apart (two of four share it about once in 150 samples), so a probe can tell from the
    tokens it has written which values it has written; with single digits it cannot ("3" starts many values).
    Digit groups come after the hyphenated nouns, so both options together extend either alone.
    """
    words = set(NOUNS + ADJECTIVES + VERBS)
    words |= {word.strip(string.punctuation) for word in template_text().split()} - {""}
    characters = sorted(set(ALPHABET))
    vocab = SPECIAL_TOKENS + characters + [f"##{c}" for c in characters] + sorted(words - set(characters))
    if hyphen_nouns:
        vocab += [f"##-{noun}" for noun in sorted(set(NOUNS))]
    if digit_groups:
        groups = [str(number).zfill(DIGIT_GROUP) for number in range(10**DIGIT_GROUP)]
        vocab += groups + [f"##{group}" for group in groups]
    model = models.WordPiece({token: index for index, token in enumerate(vocab)}, unk_token="[UNK]")
    tokenizer = Tokenizer(model)
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]", eos_token="[EOS]")
