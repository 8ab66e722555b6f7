"""Qwen3 on a CUDA device: the patched model against the unpatched one, Triton against the torch reference."""

import pytest
import torch
from helpers import greedy, left_padded_batch, returned_cache, tiny_qwen3

import asynctls_hf

pytestmark = pytest.mark.gpu

SPARSE = dict(token_budget=48, sink_tokens=4, local_tokens=8, block_size=16, top_blocks=8)


def test_dense_equivalence_on_cuda():
    model = tiny_qwen3().cuda()
    input_ids, attention_mask = (tensor.cuda() for tensor in left_padded_batch([37, 25, 11]))
    reference = greedy(model, input_ids, attention_mask, 40)
    with asynctls_hf.patched(model, token_budget=512, sink_tokens=4, local_tokens=8):
        output = greedy(model, input_ids, attention_mask, 40)
    assert torch.equal(output.sequences, reference.sequences)
    for expected, got in zip(reference.scores, output.scores, strict=True):
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


def test_triton_and_torch_backends_select_alike_on_cuda():
    model = tiny_qwen3(hidden_size=128, num_attention_heads=8, num_key_value_heads=2, head_dim=32).cuda()
    input_ids, attention_mask = (tensor.cuda() for tensor in left_padded_batch([300, 211, 97]))
    outputs = {}
    for backend in ("torch", "triton"):
        with asynctls_hf.patched(model, backend=backend, **SPARSE):
            outputs[backend] = greedy(model, input_ids, attention_mask, 24)
        stats = returned_cache(outputs[backend]).stats()
        assert stats["sparse_layer_steps"] == 23 * 2
        assert stats["attended_tokens"] <= SPARSE["token_budget"]
    assert torch.equal(outputs["triton"].sequences, outputs["torch"].sequences)


def test_bf16_long_prompt_sparse_decode_on_cuda():
    model = tiny_qwen3(max_position_embeddings=16384).to(device="cuda", dtype=torch.bfloat16)
    input_ids, attention_mask = (tensor.cuda() for tensor in left_padded_batch([8000, 6000]))
    with asynctls_hf.patched(model, token_budget=256, sink_tokens=16, local_tokens=32, block_size=64, top_blocks=16):
        output = greedy(model, input_ids, attention_mask, 16)
    stats = returned_cache(output).stats()
    assert stats["sparse_layer_steps"] == 15 * 2
    assert 0 < stats["attended_tokens"] <= 256
    assert torch.isfinite(torch.stack(output.scores)).all()
