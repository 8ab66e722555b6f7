"""How much of each head's attention the GLM probe's token selection keeps, ranked by the summed query or by head
mass, with exact keys or the label channels (development CPU, float32).

At each sparse decode step of every layer (niah_single_2, 2 samples, 8 steps; decoding with the summed query, the
default until 2026-12-06), every token but the sinks and the local window is ranked four ways, the best
token_budget - sinks - window taken, and each head's full softmax mass on the taken tokens plus the sinks and the
window is measured. Head mass here normalizes each head's softmax over all tokens (the package normalizes over the
candidates). No block filter. Also prints how many of each layer's label channels are roped (key channels from 128
on; the probe's latent is 128 wide).

    PYTHONPATH=. python eval_results/2026-12-06_h100_probe-glm4_moe_lite_label-sweep/head_mass_diagnostic.py
"""

from __future__ import annotations

import torch

from asynctls_hf import AsyncTLSConfig
from asynctls_hf.api import cache_argument, patched
from asynctls_hf.cache import AsyncTLSCache
from asynctls_hf.eval import ruler
from asynctls_hf.eval.fidelity import observe_selections
from asynctls_hf.eval.generation import load_model

LATENT = 128


def main() -> None:
    model, tokenizer = load_model("asynctls_hf/probes/checkpoints/glm4_moe_lite", "cpu", "float32")
    config = AsyncTLSConfig(token_budget=1024, token_scoring="summed")
    scaling = model.model.layers[0].self_attn.scaling
    worst, mean = {}, {}

    def observe(query, layer, plan, slots, valid):
        length = plan.length
        keys = layer.keys[0, 0, :length].float()  # [L, Dk]
        heads = query[0, 0].float()  # [G, Dk]
        probabilities = torch.softmax(heads @ keys.T * scaling, dim=-1)  # [G, L]
        label_channels = layer.label_channels[0, 0]
        for name, channels in (("exact keys", torch.arange(keys.shape[1])), ("label channels", label_channels)):
            head_scores = heads[:, channels] @ keys[:, channels].T  # [G, L]
            rankings = {"summed query": head_scores.sum(dim=0),
                        "head mass": torch.log_softmax(head_scores * scaling, dim=-1).logsumexp(dim=0)}
            for ranking, scores in rankings.items():
                scores = scores.clone()
                scores[: config.sink_tokens] = scores[length - config.local_tokens :] = float("inf")
                taken = torch.zeros(length, dtype=torch.bool)
                taken[scores.topk(config.token_budget).indices] = True
                mass = (probabilities * taken).sum(dim=-1)  # [G]
                worst.setdefault((ranking, name), []).append(mass.min().item())
                mean.setdefault((ranking, name), []).append(mass.mean().item())

    roped = []
    for sample in ruler.TASKS["niah_single_2"].samples(tokenizer, 16384, 2, 0):
        input_ids = tokenizer(sample["input"], return_tensors="pt")["input_ids"]
        cache = AsyncTLSCache.for_model(model, config)
        with patched(model, config), observe_selections(observe), torch.no_grad():
            logits = model(input_ids=input_ids, **{cache_argument(model): cache}).logits
            for _ in range(8):
                logits = model(input_ids=logits[:, -1:].argmax(dim=-1), **{cache_argument(model): cache}).logits
        roped.append([int((layer.label_channels[0, 0] >= LATENT).sum()) for layer in cache.layers])
    print("| ranking | keys | worst head's mass, mean | mass, mean over heads |")
    print("|---|---|---|---|")
    for (ranking, name), masses in worst.items():
        means = mean[ranking, name]
        print(f"| {ranking} | {name} | {sum(masses) / len(masses):.2f} | {sum(means) / len(means):.2f} |")
    print(f"roped label channels per layer (of {cache.layers[0].num_label_channels}), per sample: {roped}")


if __name__ == "__main__":
    main()
