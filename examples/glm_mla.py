"""AsyncTLS on multi-head latent attention (GLM-4.7-Flash): patch, answer a needle-in-a-haystack prompt, print stats.

The patched MLA caches only each token's normalised latent and its roped key part, selects tokens once per layer
for all heads, and decodes in the latent space. Runs offline on a CPU with the shipped GLM-4.7-Flash-architecture
probe model; --model PATH runs your own glm4_moe_lite or deepseek_v3 checkpoint.

    python examples/glm_mla.py --context 8192 --budget 1024
"""

import argparse

import torch

import asynctls_hf
from asynctls_hf.api import returned_cache
from asynctls_hf.eval import ruler
from asynctls_hf.eval.generation import load_model
from asynctls_hf.probes import load_probe


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a local checkpoint directory (default: the shipped glm4_moe_lite probe)")
    parser.add_argument("--context", type=int, default=8192, help="prompt tokens plus answer room")
    parser.add_argument("--new-tokens", type=int, default=32, help="most tokens generated")
    parser.add_argument("--budget", type=int, default=1024, help="AsyncTLS token budget")
    args = parser.parse_args()

    try:
        model, tokenizer = load_model(args.model) if args.model else load_probe("glm4_moe_lite")
    except FileNotFoundError as error:  # a copy of the package without its probe checkpoints
        raise SystemExit(f"{error}\nor run this example on your own checkpoint: --model PATH") from None
    task = ruler.TASKS["niah_single_2"]
    sample = task.make_samples(tokenizer, args.context, 1, 0)[0]
    inputs = tokenizer(sample["input"], return_tensors="pt").to(model.device)
    asynctls_hf.patch(model, token_budget=args.budget)
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=args.new_tokens, do_sample=False, return_dict_in_generate=True)
    cache = returned_cache(output)
    stats = cache.stats()

    prompt_tokens = inputs["input_ids"].shape[1]
    answer = tokenizer.decode(output.sequences[0, prompt_tokens:], skip_special_tokens=True)
    verdict = "right" if task.score_sample(answer, sample) == 1 else "wrong"
    print(f"prompt {prompt_tokens} tokens, budget {args.budget}; the answer is {sample['outputs'][0]}")
    print(f"AsyncTLS answer ({verdict}): {answer.strip()!r}")
    print(f"attended {stats['attended_tokens']:.0f} tokens per step; {stats['sparse_layer_steps']} sparse and "
          f"{stats['dense_layer_steps']} dense layer steps; cache {stats['memory_bytes'] / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
