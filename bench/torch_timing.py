"""The timing rule CudaBench uses (and bench/torch_sorting.py, bench/torch_maps.py with it): events around a batch of
about 20 ms after a warm-up, the median of 5 batches; one printed line per op."""
import torch


def time(what, nbytes, op):
    for _ in range(3):
        op()
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record(); op(); e.record(); e.synchronize()
    reps = int(max(1, min(2000, 20 / max(s.elapsed_time(e), 1e-3))))
    ms = []
    for _ in range(5):
        s.record()
        for _ in range(reps):
            op()
        e.record(); e.synchronize()
        ms.append(s.elapsed_time(e) / reps)
    ms.sort()
    print(f"{what:<55s} {ms[2]:10.4f} ms  {nbytes / (ms[2] * 1e-3) / 1e9:8.1f} GB/s  (spread {ms[0]:.4f}-{ms[4]:.4f} ms, {reps} reps)")
