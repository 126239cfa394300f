package dev.kiln.cuda;

/**
 * The op a kernel names when it records a bad index in the backend's error word (common.cuh's report_index_error);
 * kernels use the INDEX_ERROR_* codes {@link OpCodes} generates from this enum, so the two cannot drift apart.
 */
enum IndexErrorOp {
    GATHER("gather"),
    SCATTER_ADD("scatter_add"),
    INDEX_SELECT("index_select"),
    INDEX_ADD("index_add"),
    CROSS_ENTROPY("cross_entropy");

    /** The op's name in error messages. */
    final String opName;

    IndexErrorOp(String opName) { this.opName = opName; }
}
