"""What every benchmark task provides to the runner, and the prompt helpers the benchmarks share.

A sample is a dict with at least:
    input    the complete prompt text the model reads (chat template and answer prefix included)
    outputs  list of reference answers
    length   prompt tokens plus the task's generation length: the context the model holds at the end
Benchmarks may add fields their scorer needs (LongBench: `all_classes`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


class TaskUnavailable(RuntimeError):
    """A task's source data cannot be found; the runner skips the task and reports this message."""


@dataclass(frozen=True)
class Task:
    """One benchmark task.

    make_samples(tokenizer, length, num_samples, seed, chat, data_dir) -> list of samples, each at most `length`
        tokens long (prompt plus `max_new_tokens`); raises TaskUnavailable when its data is missing.
    score_sample(prediction, sample) -> score in [0, 1] of the decoded generation.
    stop_at_newline: generation also stops at a newline (LongBench's samsum).
    """

    name: str
    benchmark: str
    max_new_tokens: int
    make_samples: Callable[..., list[dict]]
    score_sample: Callable[[str, dict], float]
    stop_at_newline: bool = False

    def samples(self, tokenizer, length: int, num_samples: int, seed: int, chat: bool = False,
                data_dir: str | None = None) -> list[dict]:
        return self.make_samples(tokenizer, length, num_samples, seed, chat=chat, data_dir=data_dir)


def count_tokens(tokenizer, text: str) -> int:
    """Tokens of `text` exactly as the runner encodes a prompt (special tokens included)."""
    return len(tokenizer(text)["input_ids"])


def format_prompt(tokenizer, text: str, answer_prefix: str = "", chat: bool = False) -> str:
    """The prompt the model reads: `text` (in the tokenizer's chat template when `chat`) then `answer_prefix`.

    As RULER does, the answer prefix follows the assistant turn's opening so the model continues it.
    """
    if not chat:
        return text + answer_prefix
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("chat prompts were asked for but the tokenizer has no chat template")
    messages = [{"role": "user", "content": text}]
    wrapped = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, enable_thinking=False)
    return wrapped + answer_prefix
