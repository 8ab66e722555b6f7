"""Decode a long prompt with the KV cache offloaded to host memory, and compare with the cache on the device.

Offloaded, each layer's full K/V lives in pinned host memory; the device keeps the block summaries, the labels,
the sinks, the recent tokens and slots for top_blocks * block_size tokens per KV group. --granularity token (the
default) keeps single tokens in the slots and copies only the selected tokens they lack; block keeps whole blocks.
Prefetch lag 0 (the default) copies the misses first and gives exactly the resident cache's tokens; with lag 1 a
step attends over what is resident while what it selected and lacks is copied on a side CUDA stream for the next
step (faster, not exact). Runs offline on a CPU (synchronous copies) with the shipped Qwen3 probe; --model PATH
--device cuda runs your own checkpoint on a GPU.

    python examples/long_context_offload.py --context 16384 --budget 1024
    python examples/long_context_offload.py --context 16384 --budget 1024 --granularity block --lag 1
"""

import argparse

import torch

import asynctls_hf
from asynctls_hf.api import returned_cache
from asynctls_hf.eval import ruler
from asynctls_hf.eval.generation import load_model
from asynctls_hf.probes import load_probe
from asynctls_hf.timing import DecodeClock


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a local checkpoint directory (default: the shipped Qwen3 probe)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, ...")
    parser.add_argument("--context", type=int, default=16384, help="prompt tokens plus answer room")
    parser.add_argument("--new-tokens", type=int, default=32, help="most tokens generated")
    parser.add_argument("--budget", type=int, default=1024, help="AsyncTLS token budget")
    parser.add_argument("--lag", type=int, choices=(0, 1), default=0, help="prefetch lag (0: exact)")
    parser.add_argument("--granularity", choices=("token", "block"), default="token",
                        help="what the device slots hold: the selected tokens, or whole blocks")
    args = parser.parse_args()

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    model, tokenizer = load_model(args.model, device) if args.model else load_probe("qwen3", device)
    task = ruler.TASKS["niah_single_2"]
    sample = task.make_samples(tokenizer, args.context, 1, 0)[0]
    inputs = tokenizer(sample["input"], return_tensors="pt").to(model.device)
    prompt_tokens = inputs["input_ids"].shape[1]
    print(f"prompt {prompt_tokens} tokens, budget {args.budget}; the answer is {sample['outputs'][0]}")
    for offload in (False, True):
        asynctls_hf.patch(model, token_budget=args.budget, offload=offload, prefetch_lag=args.lag,
                          offload_granularity=args.granularity)
        with torch.no_grad(), DecodeClock(model) as clock:
            output = model.generate(**inputs, max_new_tokens=args.new_tokens, do_sample=False,
                                    return_dict_in_generate=True)
        stats = returned_cache(output).stats()
        answer = tokenizer.decode(output.sequences[0, prompt_tokens:], skip_special_tokens=True)
        verdict = "right" if task.score_sample(answer, sample) == 1 else "wrong"
        name = f"offloaded ({args.granularity}s, lag {args.lag})" if offload else "on the device"
        print(f"{name:<26} {clock.tokens_per_second() or float('nan'):7.1f} tokens/s  answer ({verdict}): "
              f"{answer.strip()!r}")
        print(f"{'':<26} device {stats['memory_bytes'] / 2**20:.1f} MiB, host {stats['host_memory_bytes'] / 2**20:.1f}"
              f" MiB; hit rate {stats['hit_rate']:.3f}, {stats['h2d_bytes'] / max(clock.decode_steps, 1) / 2**10:.0f}"
              f" KiB copied per step, {stats['copy_wait_seconds'] * 1e3:.1f} ms waited on copies")


if __name__ == "__main__":
    main()
