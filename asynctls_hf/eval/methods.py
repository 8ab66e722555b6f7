"""The methods compared by the accuracy harness, each a named configuration of our own engine.

Every sparse method runs the same AsyncTLS decode path with the same token budget, block size, sinks and local
window; only the two selection levels differ. So the comparison isolates the selection rule:

    full             stock attention: the unpatched model
    asynctls         two-level: block filtering (top_blocks, default 128 as configured) then token labels
    quest            block level only: top_blocks * block_size equals the tokens selected, so token selection
                     keeps every token of the kept blocks (the budget's remainder goes to the local window)
    double-sparsity  token labels only: top_blocks covers every block, so no block is filtered out
    token-topk       exact token top-k, the upper bound of token selection: every block, labels of the full key
                     width at 16 bits, i.e. the exact q . k (summed over the group's heads, or each head's softmax
                     mass with token_scoring "head_mass": the ranking is the shared setting's)
    streaming        sinks and local window only (StreamingLLM): sink_tokens + local_tokens == budget

Add a method by adding one entry to METHODS; the tests parametrize over it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from asynctls_hf.config import AsyncTLSConfig

# More blocks than any context has: block filtering keeps them all (select_tokens clamps to the blocks present).
ALL_BLOCKS = 1 << 30


@dataclass(frozen=True)
class Method:
    """A named way to decode: `settings(fields, key_width)` turns the base AsyncTLSConfig fields (token_budget
    already set) into this method's, or is None for stock attention."""

    name: str
    description: str
    settings: Callable[[dict, int], dict] | None


def _asynctls(fields: dict, key_width: int) -> dict:
    selected = fields["token_budget"] - fields["sink_tokens"] - fields["local_tokens"]
    return {**fields, "top_blocks": max(fields["top_blocks"], -(-selected // fields["block_size"]))}


def _quest(fields: dict, key_width: int) -> dict:
    block_size, sinks = fields["block_size"], fields["sink_tokens"]
    top_blocks = (fields["token_budget"] - sinks - fields["local_tokens"]) // block_size
    if top_blocks < 1:
        raise ValueError(
            f"quest needs a token budget of at least sink_tokens + local_tokens + block_size "
            f"({sinks} + {fields['local_tokens']} + {block_size}); got {fields['token_budget']}"
        )
    local = fields["token_budget"] - sinks - top_blocks * block_size
    return {**fields, "top_blocks": top_blocks, "local_tokens": local}


def _double_sparsity(fields: dict, key_width: int) -> dict:
    return {**fields, "top_blocks": ALL_BLOCKS}


def _token_topk(fields: dict, key_width: int) -> dict:
    return {**fields, "top_blocks": ALL_BLOCKS, "label_channels": key_width, "label_bits": 16}


def _streaming(fields: dict, key_width: int) -> dict:
    sinks = min(fields["sink_tokens"], fields["token_budget"])
    return {**fields, "sink_tokens": sinks, "local_tokens": fields["token_budget"] - sinks}


METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        Method("full", "stock attention over every token (the unpatched model)", None),
        Method("asynctls", "block filtering on min/max summaries, then token selection on quantized labels", _asynctls),
        Method("quest", "block filtering only; every token of the kept blocks", _quest),
        Method("double-sparsity", "token selection on quantized labels over every block", _double_sparsity),
        Method("token-topk", "exact top-k tokens by q . k over every block (upper bound)", _token_topk),
        Method("streaming", "attention sinks plus the local window only", _streaming),
    )
}


def method_config(name: str, budget: int, key_width: int, **base) -> AsyncTLSConfig | None:
    """The AsyncTLSConfig of method `name` at `budget` tokens per KV group and step, for keys `key_width` wide.

    `base` holds AsyncTLSConfig overrides shared by every method (block_size, sink_tokens, backend, ...).
    Returns None for `full` (decode with the unpatched model).
    """
    method = METHODS.get(name)
    if method is None:
        raise ValueError(f"unknown method {name!r}; the methods are: {', '.join(METHODS)}")
    if method.settings is None:
        return None
    defaults = AsyncTLSConfig()
    fields = {
        "block_size": defaults.block_size,
        "top_blocks": defaults.top_blocks,
        "sink_tokens": defaults.sink_tokens,
        "local_tokens": defaults.local_tokens,
        **base,
        "token_budget": budget,
    }
    return defaults.replace(**method.settings(fields, key_width))
