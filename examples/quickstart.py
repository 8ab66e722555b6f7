"""Load a model, patch it with AsyncTLS, generate from a long prompt, and compare with full attention.

Runs as written on a CPU: with no checkpoint it builds a small random Qwen3 (the tokens are meaningless,
the timings and cache statistics are real). Pass --model PATH for a real Qwen3 checkpoint.
"""

import argparse
import time

import torch
from transformers import AutoModelForCausalLM, Qwen3Config, Qwen3ForCausalLM
from transformers.generation.streamers import BaseStreamer

import asynctls_hf


def load(path: str | None):
    if path:
        return AutoModelForCausalLM.from_pretrained(path, dtype="auto", local_files_only=True).eval()
    config = Qwen3Config(
        vocab_size=1000,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=2,
        head_dim=64,
        max_position_embeddings=65536,
    )
    torch.manual_seed(0)
    return Qwen3ForCausalLM(config).eval()


class DecodeClock(BaseStreamer):
    """Times decoding alone: from the first generated token (prefill done) to the last."""

    def __init__(self):
        self.stamps = []

    def put(self, value):
        self.stamps.append(time.perf_counter())

    def end(self):
        pass

    def tokens_per_second(self, batch: int) -> float:
        decoded = self.stamps[2:]  # stamps[0]: the prompt; stamps[1]: the first token, right after prefill
        return batch * (len(decoded)) / (decoded[-1] - self.stamps[1])


def timed_generate(model, input_ids, new_tokens):
    """Greedy generation; returns (output, decode tokens/s with prefill left out)."""
    clock = DecodeClock()
    output = model.generate(
        input_ids,
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        do_sample=False,
        return_dict_in_generate=True,
        streamer=clock,
    )
    return output, clock.tokens_per_second(input_ids.shape[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", help="a local Qwen3 checkpoint directory (default: a small random Qwen3)")
    parser.add_argument("--context", type=int, default=4096, help="prompt length in tokens")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--budget", type=int, default=512, help="AsyncTLS token budget")
    args = parser.parse_args()

    model = load(args.model)
    input_ids = torch.randint(1, model.config.vocab_size, (1, args.context))
    with torch.no_grad():
        dense, dense_rate = timed_generate(model, input_ids, args.new_tokens)
        asynctls_hf.patch(model, token_budget=args.budget)
        sparse, sparse_rate = timed_generate(model, input_ids, args.new_tokens)
    cache = next(value for value in sparse.values() if isinstance(value, asynctls_hf.AsyncTLSCache))
    stats = cache.stats()
    print(f"context {args.context} tokens, budget {args.budget}")
    print(f"full attention: {dense_rate:.1f} tokens/s")
    print(
        f"AsyncTLS:       {sparse_rate:.1f} tokens/s, {stats['attended_tokens']:.0f} tokens attended per head per step"
    )
    print(f"AsyncTLS cache: {stats['memory_bytes'] / 2**20:.1f} MiB")
    same = (dense.sequences == sparse.sequences).float().mean().item()
    print(f"tokens equal to full attention's: {same:.0%}")


if __name__ == "__main__":
    main()
