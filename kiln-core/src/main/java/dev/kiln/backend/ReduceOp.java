package dev.kiln.backend;

/** Reductions over dimensions. Mean is SUM scaled by the op layer. */
public enum ReduceOp { SUM, MAX, MIN }
