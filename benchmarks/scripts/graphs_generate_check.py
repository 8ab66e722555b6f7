"""Why does generate() decode slowly with graphs? Full-size Qwen3-8B (random weights), generate() at a short context,
batch 4, resident and offloaded: every warning, graph_replays, decode tokens/s. Run on the H200."""

import time
import warnings

import torch
from transformers import AutoModelForCausalLM

import asynctls_hf
from asynctls_hf.api import returned_cache
from asynctls_hf.bench.generate_bench import model_config
from asynctls_hf.timing import DecodeClock

with torch.device("cuda"):
    model = AutoModelForCausalLM.from_config(model_config("qwen3-8b", 20000), dtype=torch.bfloat16).eval()
input_ids = torch.randint(100, 1000, (4, 8192), device="cuda")
for settings in (dict(offload=False), dict(offload=True)):
    with asynctls_hf.patched(model, **settings), warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter("always")
        began = time.perf_counter()
        with DecodeClock(model) as clock:
            output = model.generate(input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=24,
                                    min_new_tokens=24, do_sample=False, pad_token_id=0, return_dict_in_generate=True)
        cache = returned_cache(output)
        steps = [b - a for a, b in zip(clock.stamps, clock.stamps[1:], strict=False)]
        print(settings, "replays", cache.stats()["graph_replays"], "tok/s", clock.tokens_per_second(4),
              "step ms", [round(1e3 * s, 1) for s in steps], "total s", round(time.perf_counter() - began, 1))
        for warning in caught:
            if "deprecated" not in str(warning.message):
                print("WARNING", warning.category.__name__, str(warning.message)[:300])
        print("graph keys", list(cache.decode_graphs))
