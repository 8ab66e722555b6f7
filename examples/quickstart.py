"""Load a model, patch it with AsyncTLS, answer a long needle-in-a-haystack prompt, and compare with full attention.

Runs offline on a CPU with the shipped Qwen3 probe model; --model PATH runs your own Qwen3 or GLM-4.7-Flash
checkpoint instead. Prints both answers, decode tokens/s, the tokens attended per step and the cache's memory.

    python examples/quickstart.py --context 16384 --budget 1024
"""

import argparse

import torch

import asynctls_hf
from asynctls_hf.api import returned_cache
from asynctls_hf.eval import ruler
from asynctls_hf.eval.generation import load_model
from asynctls_hf.probes import load_probe
from asynctls_hf.timing import DecodeClock


def generate(model, inputs, new_tokens: int):
    """Greedy generation; returns (output, decode tokens/s with the prefill left out)."""
    with torch.no_grad(), DecodeClock(model) as clock:
        output = model.generate(**inputs, max_new_tokens=new_tokens, do_sample=False, return_dict_in_generate=True)
    return output, clock.tokens_per_second()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a local checkpoint directory (default: the shipped Qwen3 probe)")
    parser.add_argument("--context", type=int, default=16384, help="prompt tokens plus answer room")
    parser.add_argument("--new-tokens", type=int, default=32, help="most tokens generated")
    parser.add_argument("--budget", type=int, default=1024, help="AsyncTLS token budget")
    args = parser.parse_args()

    model, tokenizer = load_model(args.model) if args.model else load_probe("qwen3")
    sample = ruler.TASKS["niah_single_2"].make_samples(tokenizer, args.context, 1, 0)[0]
    inputs = tokenizer(sample["input"], return_tensors="pt").to(model.device)
    full, full_speed = generate(model, inputs, args.new_tokens)
    asynctls_hf.patch(model, token_budget=args.budget)  # in place; asynctls_hf.unpatch(model) undoes it
    sparse, sparse_speed = generate(model, inputs, args.new_tokens)
    cache = returned_cache(sparse)
    stats = cache.stats()

    prompt_tokens = inputs["input_ids"].shape[1]
    print(f"prompt {prompt_tokens} tokens, budget {args.budget}; the answer is {sample['outputs'][0]}")
    for name, output, speed in (("full attention", full, full_speed), ("AsyncTLS", sparse, sparse_speed)):
        answer = tokenizer.decode(output.sequences[0, prompt_tokens:], skip_special_tokens=True)
        print(f"{name:<15} {speed or float('nan'):7.1f} tokens/s  answer: {answer.strip()!r}")
    print(f"AsyncTLS attended {stats['attended_tokens']:.0f} tokens per head and step; "
          f"its cache holds {stats['memory_bytes'] / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
