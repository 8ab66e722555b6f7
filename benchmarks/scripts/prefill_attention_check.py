"""What does one prefill chunk's attention cost at 96k, and would a per-row causal SDPA without a mask be better?

The masked reference (naive.causal_prefill_attention: one SDPA call over the batch with a [B, 1, c, L] boolean mask,
enable_gqa) against the per-row form (ops.causal_prefill_attention(per_row=True): one lower-right causal SDPA per
row, no mask; flash where SDPA allows it; the default picks it where flash takes the shapes), at the Qwen3-8B
attention shape (32 query heads, 8 groups, head dim 128), GLM-4.7-Flash's prefill over K/V expanded from the latent
(20 heads, width 256), batch 8, a
2048-token chunk ending at slot 96k, rows left-padded by 0-7k tokens. Prints whether flash takes the per-row form,
the median of 5 timed calls after 2 (CUDA events), the peak memory above the inputs, and the largest difference of
the per-row output from the masked one on real queries. Run on the H200:
    PYTHONPATH=. python benchmarks/scripts/prefill_attention_check.py
"""

import functools
import statistics

import torch

from asynctls_hf import ops
from asynctls_hf.ops import naive

BATCH, CHUNK, CONTEXT = 8, 2048, 96 * 1024
SHAPES = {  # heads, groups, key width, value width
    "qwen3-8b": (32, 8, 128, 128),
    "glm-4.7-flash expanded": (20, 20, 256, 256),  # what its prefill attends: K/V expanded from the latent
}


def measure(function) -> tuple[float, float, torch.Tensor]:
    """(median ms, peak GiB above what was allocated before, the last output)."""
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for repetition in range(7):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        output = function()
        end.record()
        end.synchronize()
        if repetition >= 2:
            times.append(start.elapsed_time(end))
    return statistics.median(times), (torch.cuda.max_memory_allocated() - base) / 2**30, output


def compare(name: str, heads: int, groups: int, key_width: int, value_width: int) -> None:
    first_query_slot = CONTEXT - CHUNK
    row_start = torch.tensor([0, 7000, 123, 4096, 0, 2500, 6999, 77], device="cuda")
    real = torch.arange(first_query_slot, CONTEXT, device="cuda")[None, :] >= row_start[:, None]
    query = torch.randn(BATCH, heads, CHUNK, key_width, device="cuda", dtype=torch.bfloat16)
    keys = torch.randn(BATCH, groups, CONTEXT, key_width, device="cuda", dtype=torch.bfloat16)
    values = keys[..., :value_width] if key_width != value_width else torch.randn_like(keys)
    arguments = (query, keys, values, first_query_slot, row_start, key_width**-0.5)
    per_row_arguments = (*arguments[:5], row_start.tolist(), key_width**-0.5, CHUNK)
    print(f"{name}: flash takes the per-row form: {ops.prefill_attention.flash_takes(query, keys, values)}")
    reference = None
    for method, function in (
        ("masked (reference)", functools.partial(naive.causal_prefill_attention, *arguments, CHUNK)),
        ("per-row lower-right", functools.partial(ops.causal_prefill_attention, *per_row_arguments, per_row=True)),
    ):
        try:
            ms, peak, output = measure(function)
        except torch.OutOfMemoryError as error:
            print(f"{name}: {method}: out of memory ({str(error)[:120]})")
            continue
        if method.startswith("masked"):
            reference, difference = output, 0.0
        elif reference is None:
            difference = float("nan")  # the masked reference ran out of memory
        else:
            difference = (output.float() - reference.float()).abs().permute(0, 2, 1, 3)[real].max().item()
        print(f"{name}: {method}: {ms:.2f} ms, peak {peak:.2f} GiB above the inputs, max diff {difference:.4f}")


if __name__ == "__main__":
    torch.manual_seed(0)
    for name, shape in SHAPES.items():
        compare(name, *shape)
        torch.cuda.empty_cache()
