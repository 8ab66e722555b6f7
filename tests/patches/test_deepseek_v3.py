"""DeepSeek-V3 (deepseek_v3) runs on the GLM-4.7-Flash MLA code: dense equivalence and sparse decoding."""

from helpers import (
    assert_same_generation,
    assert_same_scores_exactly,
    greedy,
    is_unpatched,
    left_padded_batch,
    returned_cache,
    tiny_deepseek_v3,
)

import asynctls_hf
from asynctls_hf import AsyncTLSCache

DENSE = dict(token_budget=512, sink_tokens=4, local_tokens=8, block_size=8, top_blocks=64, label_channels=8)
SPARSE = dict(token_budget=24, sink_tokens=4, local_tokens=8, block_size=8, top_blocks=32, label_channels=8)


def test_dense_equivalence_left_padded_greedy_and_unpatch_restores():
    model = tiny_deepseek_v3()
    input_ids, attention_mask = left_padded_batch([37, 25, 11])
    reference = greedy(model, input_ids, attention_mask, 40)
    asynctls_hf.patch(model, **DENSE)
    output = greedy(model, input_ids, attention_mask, 40)
    assert isinstance(returned_cache(output), AsyncTLSCache)
    assert returned_cache(output).layers[0].keys.shape[-1] == 32 + 8
    assert_same_generation(reference, output, atol=1e-4)
    asynctls_hf.unpatch(model)
    assert is_unpatched(model)
    assert_same_scores_exactly(reference, greedy(model, input_ids, attention_mask, 40))


def test_sparse_decoding_runs_within_budget():
    model = asynctls_hf.patch(tiny_deepseek_v3(), **SPARSE)
    input_ids, attention_mask = left_padded_batch([60, 45, 30])
    stats = returned_cache(greedy(model, input_ids, attention_mask, 12)).stats()
    assert stats["sparse_layer_steps"] == 11 * 3 and stats["dense_layer_steps"] == 0
    assert 0 < stats["attended_tokens"] <= SPARSE["token_budget"]
