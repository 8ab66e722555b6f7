"""DecodeClock: decode speed of a generate() call, with the prefill left out."""

from __future__ import annotations

import time

import torch
from torch import nn


class DecodeClock:
    """Stamps the end of every forward call of `model` while active; the first call is the prefill.

        with DecodeClock(model) as clock:
            model.generate(input_ids, max_new_tokens=64)
        clock.tokens_per_second(batch=input_ids.shape[0])

    Each forward after the prefill is one decode step that produces one token per row. On CUDA each stamp
    waits for the device, so the prefill's kernels are not counted as decode time.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.device = next(model.parameters()).device
        self.stamps: list[float] = []

    def __enter__(self) -> DecodeClock:
        self.stamps.clear()
        self._handle = self.model.register_forward_hook(self._stamp)
        return self

    def __exit__(self, *exc_info) -> None:
        self._handle.remove()

    def _stamp(self, *_) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.stamps.append(time.perf_counter())

    @property
    def decode_steps(self) -> int:
        return max(len(self.stamps) - 1, 0)

    def tokens_per_second(self, batch: int = 1) -> float | None:
        """Tokens decoded per second after the prefill; None when generation stopped before a decode step."""
        if not self.decode_steps:
            return None
        return batch * self.decode_steps / (self.stamps[-1] - self.stamps[0])
