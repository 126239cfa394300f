// The LSTM and GRU cells, forward and backward, one thread per element (b, j) of the (B, H) state. PyTorch's gate
// orders: i, f, g, o (LSTM) and r, z, n (GRU), each a block of H columns of a row. Every pointer is contiguous.
// Arithmetic runs in the element type's accumulation type P (float for the 32- and 16-bit floats, double for
// float64): 16-bit gates are computed in float32 and each result rounded once. The reference is RecurrentCpu.
#include "common.cuh"

template <typename P> __device__ __forceinline__ P sigmoid_of(P v) { return (P) 1 / ((P) 1 + exp(-v)); }

// c' = σ(f) c + σ(i) tanh(g), h' = σ(o) tanh(c'); act keeps σ(i), σ(f), tanh(g), σ(o) for the backward.
template <typename T>
__device__ __forceinline__ void lstm_cell(T* h, T* c_new, T* act, const T* gates, const T* c, i64 n, i64 hid) {
    typedef typename Acc<T>::type P;
    GRID_STRIDE(e, n) {
        i64 j, b = divmod(e, hid, j);
        i64 g0 = b * 4 * hid + j;
        P i = sigmoid_of(load<P>(gates[g0])), f = sigmoid_of(load<P>(gates[g0 + hid]));
        P g = tanh(load<P>(gates[g0 + 2 * hid])), o = sigmoid_of(load<P>(gates[g0 + 3 * hid]));
        P cn = f * load<P>(c[e]) + i * g;
        c_new[e] = store<T, P>(cn);
        h[e] = store<T, P>(o * tanh(cn));
        act[g0] = store<T, P>(i);
        act[g0 + hid] = store<T, P>(f);
        act[g0 + 2 * hid] = store<T, P>(g);
        act[g0 + 3 * hid] = store<T, P>(o);
    }
}

// dc' gathers both paths to c' (its own gradient and h' = σ(o) tanh(c')); dc = dc' σ(f).
template <typename T>
__device__ __forceinline__ void lstm_cell_backward(T* d_gates, T* dc, const T* dh, const T* dc_new, const T* c, const T* c_new,
                                                   const T* act, i64 n, i64 hid) {
    typedef typename Acc<T>::type P;
    GRID_STRIDE(e, n) {
        i64 j, b = divmod(e, hid, j);
        i64 g0 = b * 4 * hid + j;
        P i = load<P>(act[g0]), f = load<P>(act[g0 + hid]), g = load<P>(act[g0 + 2 * hid]), o = load<P>(act[g0 + 3 * hid]);
        P tc = tanh(load<P>(c_new[e])), dhe = load<P>(dh[e]);
        P dct = load<P>(dc_new[e]) + dhe * o * ((P) 1 - tc * tc);
        d_gates[g0] = store<T, P>(dct * g * i * ((P) 1 - i));
        d_gates[g0 + hid] = store<T, P>(dct * load<P>(c[e]) * f * ((P) 1 - f));
        d_gates[g0 + 2 * hid] = store<T, P>(dct * i * ((P) 1 - g * g));
        d_gates[g0 + 3 * hid] = store<T, P>(dhe * tc * o * ((P) 1 - o));
        dc[e] = store<T, P>(dct * f);
    }
}

// r = σ(x_r + h_r), z = σ(x_z + h_z), n = tanh(x_n + r h_n), h' = (1 - z) n + z h; act keeps r, z, n, h_n.
template <typename T>
__device__ __forceinline__ void gru_cell(T* h_new, T* act, const T* gx, const T* gh, const T* h, i64 n, i64 hid) {
    typedef typename Acc<T>::type P;
    GRID_STRIDE(e, n) {
        i64 j, b = divmod(e, hid, j);
        i64 g0 = b * 3 * hid + j, a0 = b * 4 * hid + j;
        P r = sigmoid_of(load<P>(gx[g0]) + load<P>(gh[g0])), z = sigmoid_of(load<P>(gx[g0 + hid]) + load<P>(gh[g0 + hid]));
        P hn = load<P>(gh[g0 + 2 * hid]), nn = tanh(load<P>(gx[g0 + 2 * hid]) + r * hn);
        h_new[e] = store<T, P>(((P) 1 - z) * nn + z * load<P>(h[e]));
        act[a0] = store<T, P>(r);
        act[a0 + hid] = store<T, P>(z);
        act[a0 + 2 * hid] = store<T, P>(nn);
        act[a0 + 3 * hid] = store<T, P>(hn);
    }
}

// The input and hidden parts share the r and z gradients; n's differs by the factor r. dh = dh' z is the direct path.
template <typename T>
__device__ __forceinline__ void gru_cell_backward(T* dgx, T* dgh, T* dh, const T* dh_new, const T* h, const T* act, i64 n, i64 hid) {
    typedef typename Acc<T>::type P;
    GRID_STRIDE(e, n) {
        i64 j, b = divmod(e, hid, j);
        i64 g0 = b * 3 * hid + j, a0 = b * 4 * hid + j;
        P r = load<P>(act[a0]), z = load<P>(act[a0 + hid]), nn = load<P>(act[a0 + 2 * hid]), hn = load<P>(act[a0 + 3 * hid]);
        P d = load<P>(dh_new[e]);
        P dn = d * ((P) 1 - z) * ((P) 1 - nn * nn);
        P dr = dn * hn * r * ((P) 1 - r), dz = d * (load<P>(h[e]) - nn) * z * ((P) 1 - z);
        dgx[g0] = store<T, P>(dr);
        dgx[g0 + hid] = store<T, P>(dz);
        dgx[g0 + 2 * hid] = store<T, P>(dn);
        dgh[g0] = store<T, P>(dr);
        dgh[g0 + hid] = store<T, P>(dz);
        dgh[g0 + 2 * hid] = store<T, P>(dn * r);
        dh[e] = store<T, P>(d * z);
    }
}

#define RECURRENT(T, S) \
extern "C" __global__ void lstm_cell_##S(T* h, T* c_new, T* act, const T* gates, const T* c, i64 n, i64 hid) { \
    lstm_cell<T>(h, c_new, act, gates, c, n, hid); \
} \
extern "C" __global__ void lstm_cell_backward_##S(T* d_gates, T* dc, const T* dh, const T* dc_new, const T* c, const T* c_new, \
        const T* act, i64 n, i64 hid) { \
    lstm_cell_backward<T>(d_gates, dc, dh, dc_new, c, c_new, act, n, hid); \
} \
extern "C" __global__ void gru_cell_##S(T* h_new, T* act, const T* gx, const T* gh, const T* h, i64 n, i64 hid) { \
    gru_cell<T>(h_new, act, gx, gh, h, n, hid); \
} \
extern "C" __global__ void gru_cell_backward_##S(T* dgx, T* dgh, T* dh, const T* dh_new, const T* h, const T* act, i64 n, i64 hid) { \
    gru_cell_backward<T>(dgx, dgh, dh, dh_new, h, act, n, hid); \
}
KILN_FLOAT_TYPES(RECURRENT)
