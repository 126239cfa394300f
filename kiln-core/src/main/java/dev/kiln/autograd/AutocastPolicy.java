package dev.kiln.autograd;

/**
 * The autocast rule table, in one place as PyTorch's autocast op lists: which ops run in the low precision
 * (their float32 inputs are cast down: the tensor-core ops, where 16 bits halve the memory traffic and the
 * products lose little) and which run in float32 (their 16-bit inputs are cast up: exponentials, reductions and
 * normalisations, whose results 8 bits of mantissa would spoil). Ops not listed run in the dtype of their inputs
 * (relu, pooling, dropout, views, elementwise arithmetic with type promotion).
 */
public enum AutocastPolicy {
    // run in bfloat16 / float16
    MATMUL(Precision.LOW),
    LINEAR(Precision.LOW),
    CONV2D(Precision.LOW),
    /** scaled_dot_product_attention: its products on tensor cores, the softmax in float32 inside the kernel. */
    ATTENTION(Precision.LOW),
    /** The LSTM and GRU cells and layers: the recurrent GEMMs on tensor cores, the fused cells compute in float32 inside. */
    LSTM(Precision.LOW),
    GRU(Precision.LOW),

    // run in float32
    SOFTMAX(Precision.FLOAT32),
    LOG_SOFTMAX(Precision.FLOAT32),
    CROSS_ENTROPY(Precision.FLOAT32),
    NLL_LOSS(Precision.FLOAT32),
    MSE_LOSS(Precision.FLOAT32),
    L1_LOSS(Precision.FLOAT32),
    SMOOTH_L1_LOSS(Precision.FLOAT32),
    BCE_WITH_LOGITS(Precision.FLOAT32),
    LAYER_NORM(Precision.FLOAT32),
    BATCH_NORM(Precision.FLOAT32),
    SUM(Precision.FLOAT32),
    MEAN(Precision.FLOAT32),
    VAR(Precision.FLOAT32),
    EXP(Precision.FLOAT32),
    LOG(Precision.FLOAT32),
    RECIPROCAL(Precision.FLOAT32),
    POW(Precision.FLOAT32);

    /** Where an op's floating inputs are computed under autocast. */
    public enum Precision { LOW, FLOAT32 }

    private final Precision precision;

    AutocastPolicy(Precision precision) { this.precision = precision; }

    public Precision precision() { return precision; }
}
