"""Token selection ranking each candidate by its best head's label score instead of by the score of the query summed
over the heads: a patch of the PyTorch reference (naive.candidate_scores) for one run, not a setting of the package.
On CPU every op runs the reference, so installing the patch changes what asynctls selects there.
"""

from __future__ import annotations

import torch

from asynctls_hf.ops import naive

SUMMED_SCORES = naive.candidate_scores


def candidate_scores_head_max(query, label_channels, label_codes, label_scale, label_zero, kept_blocks,
                              kept_block_scores, candidate_low, candidate_high, block_size, bits):
    """naive.candidate_scores with each candidate scored by its best head: query [B, NG, G, Dk]."""
    candidates, summed = SUMMED_SCORES(query, label_channels, label_codes, label_scale, label_zero, kept_blocks,
                                       kept_block_scores, candidate_low, candidate_high, block_size, bits)
    per_head = torch.stack([
        naive.candidate_label_scores(query[:, :, head].float().gather(-1, label_channels), label_codes, label_scale,
                                     label_zero, candidates, bits)
        for head in range(query.shape[2])
    ]).amax(dim=0)
    return candidates, per_head.masked_fill(summed == naive.NEG_INF, naive.NEG_INF)


def install() -> None:
    """Make every later candidate scoring on the PyTorch path rank by the best head."""
    naive.candidate_scores = candidate_scores_head_max
