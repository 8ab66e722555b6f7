"""What does one prefill chunk's attention cost at 96k, and would a per-row causal SDPA without a mask be better?

ops.causal_prefill_attention (one SDPA call over the batch with a materialized [B, 1, c, L] boolean mask, enable_gqa)
against a per-row call with torch's lower-right CausalBias (no mask; flash where SDPA allows it), at the Qwen3-8B
attention shape (32 query heads, 8 groups, head dim 128) and GLM-4.7-Flash's latent prefill shape (20 heads, one
group, keys 576 and values 512 wide), batch 8, a 2048-token chunk ending at slot 96k, rows left-padded by 0-7k
tokens. Prints the median of 5 timed calls after 2 (CUDA events), the peak memory above the inputs, and the largest
difference of the per-row output from the masked one on real queries. Run on the H200:
    PYTHONPATH=. python benchmarks/scripts/prefill_attention_check.py
"""

import functools
import statistics

import torch
import torch.nn.functional as F
from torch.nn.attention.bias import causal_lower_right

from asynctls_hf import ops

BATCH, CHUNK, CONTEXT = 8, 2048, 96 * 1024
SHAPES = {"qwen3-8b": (32, 8, 128, 128), "glm-4.7-flash latent": (20, 1, 576, 512)}


def per_row_lower_right(query, keys, values, first_query_slot, row_start, scaling):
    """Each row's real queries attend to its real keys up to themselves (lower-right causal); a pad query gets
    its own value (it attends to itself only, as in ops.causal_prefill_attention)."""
    heads, groups = query.shape[1], keys.shape[1]
    out = values[:, :, first_query_slot:].repeat_interleave(heads // groups, dim=1).to(query.dtype).clone()
    for row, start in enumerate(row_start.tolist()):
        skipped = max(start - first_query_slot, 0)
        row_query = query[row : row + 1, :, skipped:]
        row_keys = keys[row : row + 1, :, start:]
        row_values = values[row : row + 1, :, start:]
        bias = causal_lower_right(row_query.shape[2], row_keys.shape[2])
        out[row : row + 1, :, skipped:] = F.scaled_dot_product_attention(
            row_query, row_keys, row_values, attn_mask=bias, scale=scaling, enable_gqa=heads != groups
        )
    return out


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
    reference = None
    for method, function in (
        ("masked (ops)", functools.partial(ops.causal_prefill_attention, *arguments, CHUNK)),
        ("per-row lower-right", functools.partial(per_row_lower_right, *arguments)),
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
