package dev.kiln.nn;

/** Elementwise activations as layers: a closed set, each one function of F and without state. */
public sealed abstract class Activation extends Layer implements Forward permits ReLU, LeakyReLU, GELU, SiLU, Tanh, Sigmoid {}
