"""Whether the wider kernel gaps of the graphed decode step are a state of the process or of the GPU.

step_gap_bisect_h200.py found the resident Qwen3-8B step (96k, batch 1) at 0.10 us between kernels the first time
in a process and 0.42 us every later time, the same resident step included, whatever ran in between. This times the
resident step several times in one process with different things in between: the first cache and graph kept
alive, both freed, 20 s idle, 20 s of matrix products; `--burn-first` runs the matrix products before the first
step instead. While each runs, a thread samples the GPU's clocks, power, temperature and clock-event reasons
(nvidia-smi, every 0.25 s).

    PYTHONPATH=. python benchmarks/scripts/step_gap_state_h200.py --out DIR [--burn-first]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import threading
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from asynctls_hf.bench.decode_step_bench import DTYPE
from asynctls_hf.bench.generate_bench import model_config
from benchmarks.scripts.step_gap_bisect_h200 import CONTEXT, measure, report

QUERY = "clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_event_reasons.active"


class GpuSampler(threading.Thread):
    """Samples `query` (nvidia-smi --query-gpu fields) every `period` seconds into samples[label] while label is
    set."""

    def __init__(self, period: float = 0.25, query: str = QUERY):
        super().__init__(daemon=True)
        self.period, self.query, self.label, self.samples, self.stopped = period, query, None, {}, False

    def run(self) -> None:
        while not self.stopped:
            label = self.label
            if label is not None:
                line = subprocess.run(["nvidia-smi", f"--query-gpu={self.query}", "--format=csv,noheader,nounits"],
                                      capture_output=True, text=True).stdout.strip()
                self.samples.setdefault(label, []).append(line)
            time.sleep(self.period)

    def lines(self, label) -> dict[str, int]:
        """How often each sampled line was seen under `label`."""
        seen: dict[str, int] = {}
        for line in self.samples.get(label, []):
            seen[line] = seen.get(line, 0) + 1
        return seen

    def summary(self, label: str) -> dict:
        """Median and minimum SM and memory clock (MHz), median power (W) and temperature, clock-event reasons."""
        rows = [line.split(", ") for line in self.samples.get(label, []) if line.count(",") == 4]
        if not rows:
            return {}
        sm, mem, power, temp = ([float(row[i]) for row in rows] for i in range(4))
        return {"sm_mhz_median": statistics.median(sm), "sm_mhz_min": min(sm), "mem_mhz_median": statistics.median(mem),
                "power_w_median": statistics.median(power), "temp_c_median": statistics.median(temp),
                "clock_event_reasons": sorted({row[4] for row in rows})}


def burn(seconds: float) -> None:
    """Matrix products for `seconds`."""
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(20):
            a = (a @ a).clamp_(-1, 1)
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--burn-first", action="store_true", help="20 s of matrix products before the first step")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(model_config("qwen3-8b", CONTEXT + 1024), dtype=DTYPE).eval()
    sampler = GpuSampler()
    sampler.start()
    results = {}

    def run(name: str, keep: bool = False):
        sampler.label = name
        row, cache = measure(model, "graphed", keep=keep)
        sampler.label = None
        row.update(sampler.summary(name))
        results[name] = row
        report(name, row)
        return cache

    if args.burn_first:
        burn(20.0)
        run("resident, first in the process, after 20 s of matrix products")
    else:
        first = run("resident, first in the process", keep=True)
        run("resident, the first cache and graph alive")
        del first
        run("resident, both freed")
        time.sleep(20.0)
        run("resident, after 20 s idle")
        burn(20.0)
        run("resident, after 20 s of matrix products")
    sampler.stopped = True
    name = "step_gap_state_burn_first.json" if args.burn_first else "step_gap_state.json"
    (args.out / name).write_text(json.dumps(
        {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "results": results}, indent=1))


if __name__ == "__main__":
    main()
