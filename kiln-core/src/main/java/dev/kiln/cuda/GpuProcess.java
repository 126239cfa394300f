package dev.kiln.cuda;

/** A process with a CUDA context on a GPU, and the GPU memory it holds (-1 where NVML may not say). */
public record GpuProcess(int pid, long usedBytes) {}
