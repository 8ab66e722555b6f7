"""The step profile's table (kernel time per name, and the GPU's idle time before each launch) and timeline."""

from __future__ import annotations

import pytest
from torch.autograd import DeviceType
from torch.autograd.profiler_util import FunctionEvent

from asynctls_hf.bench.profile_step import kernel_table, profiled_timeline, stream_table


def test_idle_time_is_counted_before_the_launch_that_ends_it():
    # Two steps; "b" starts 3 µs after "a" ends; "c" on a second stream overlaps "b" (no idle), "a" of step 2
    # starts 5 µs after everything ended.
    kernels = [("a", 0.0, 10.0), ("b", 13.0, 20.0), ("c", 15.0, 22.0),
               ("a", 27.0, 37.0), ("b", 37.0, 44.0), ("c", 44.5, 46.0)]
    rows, kernels_per_step, kernel_us = kernel_table(kernels, steps=2)
    by_name = {name: (launches, micros, idle) for name, launches, micros, idle in rows}
    assert [row[0] for row in rows] == ["a", "b", "c"]  # by time
    assert by_name["a"] == pytest.approx((1.0, 10.0, 2.5))
    assert by_name["b"] == pytest.approx((1.0, 7.0, 1.5))
    assert by_name["c"] == pytest.approx((1.0, 4.25, 0.25))
    assert kernels_per_step == 3 and kernel_us == pytest.approx(21.25)


def test_the_timeline_lists_kernels_copies_and_fills_of_every_stream_by_start():
    def event(name, start, end, device_type, stream):
        return FunctionEvent(id=0, name=name, thread=0, start_us=start, end_us=end, device_type=device_type,
                             device_resource_id=stream)

    class Recorded:  # what torch.profiler.profile exposes to profiled_timeline: its events
        def events(self):
            return [event("aten::add", 0.0, 9.0, DeviceType.CPU, 0),
                    event("gemm", 5.0, 9.0, DeviceType.CUDA, 7),
                    event("Memcpy DtoD (Device -> Device)", 9.5, 10.0, DeviceType.CUDA, 7),
                    event("copy_rows", 2.0, 6.0, DeviceType.CUDA, 13)]

    assert profiled_timeline(Recorded()) == [("copy_rows", 2.0, 6.0, 13), ("gemm", 5.0, 9.0, 7),
                                             ("Memcpy DtoD (Device -> Device)", 9.5, 10.0, 7)]


def test_each_stream_counts_its_busy_time_once_and_the_time_another_stream_was_busy_beside_it():
    # One step: stream 7 runs a, b (overlapping each other: busy 0-12) and d (20-30); stream 13 runs the copy c
    # from 10 to 22, beside a/b for 2 µs and beside d for 2 µs.
    timeline = [("a", 0.0, 8.0, 7), ("b", 5.0, 12.0, 7), ("c", 10.0, 22.0, 13), ("d", 20.0, 30.0, 7)]
    assert stream_table(timeline, steps=1) == [(7, 3.0, 22.0, 4.0), (13, 1.0, 12.0, 4.0)]
    assert stream_table(timeline[:2], steps=2) == [(7, 1.0, 6.0, 0.0)]
