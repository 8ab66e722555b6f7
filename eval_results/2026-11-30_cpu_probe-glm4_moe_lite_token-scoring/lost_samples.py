"""The GLM probe's 32k samples that asynctls @ 512 lost and quest @ 512 kept (the H200 run of
eval_results/2026-11-30_h200_probe-glm4_moe_lite_32k_40-samples/), generated again on the CPU (float32, greedy,
seed 0: the same samples) with wider labels, to see whether the token labels are what loses them. `--head-max`
ranks the candidates by their best head's label score (head_max.py, a patch for the run, not a package setting).

    PYTHONPATH=. python eval_results/2026-11-30_cpu_probe-glm4_moe_lite_token-scoring/lost_samples.py \
        --tasks niah_single_1,niah_single_2 --out DIR
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import head_max  # beside this script
import torch

from asynctls_hf.eval import ruler
from asynctls_hf.eval.generation import greedy_generate, load_model
from asynctls_hf.eval.methods import method_config
from asynctls_hf.eval.runner import key_width

LOST = {"niah_single_1": [12], "niah_single_2": [34], "niah_multikey_1": [16, 37]}  # index: asynctls lost, quest kept
LENGTH, SAMPLES, BUDGET = 32768, 40, 512




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(LOST))
    parser.add_argument("--label-channels", default="64,96,128")
    parser.add_argument("--label-bits", type=int, default=4)
    parser.add_argument("--head-max", action="store_true", help="rank candidates by their best head's score")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.head_max:
        head_max.install()
    model, tokenizer = load_model("asynctls_hf/probes/checkpoints/glm4_moe_lite", "cpu", "float32")
    records = []
    for task_name in args.tasks.split(","):
        task = ruler.TASKS[task_name]
        samples = task.make_samples(tokenizer, LENGTH, SAMPLES, 0)
        for index in LOST[task_name]:
            sample = samples[index]
            for channels in [int(part) for part in args.label_channels.split(",")]:
                config = method_config("asynctls", BUDGET, key_width(model), label_channels=channels,
                                       label_bits=args.label_bits)
                started = time.perf_counter()
                prediction, _ = greedy_generate(model, tokenizer, sample["input"], task.max_new_tokens, config,
                                                task.stop_at_newline)
                records.append({"task": task_name, "index": index, "label_channels": channels,
                                "label_bits": args.label_bits, "head_max": args.head_max,
                                "prediction": prediction, "references": sample["outputs"],
                                "score": task.score_sample(prediction, sample),
                                "seconds": round(time.perf_counter() - started, 1)})
                print(json.dumps(records[-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"lost_samples_{args.tasks.replace(',', '-')}_{args.label_channels.replace(',', '-')}x{args.label_bits}"
    name += "_head-max" if args.head_max else ""
    (args.out / f"{name}.json").write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
