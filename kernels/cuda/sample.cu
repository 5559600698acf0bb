// kernels/cuda/sample.cu — the sampling op on the GPU (kernels/ops.h sample_tokens; the reference and
// specification is kernels/cpu/sample.c): one CTA per row of fp32 logits picks the next token, its
// log-prob and the stop state, so a decode step brings back ids, log-probs and done flags only.
// defines: sample_workspace_bytes_cuda, sample_tokens_cuda
//
// Top-k, top-p and the draw over the kept tokens all ask for the shortest prefix of the order
// (probability descending, id ascending) with a given count or mass. Without sorting: probabilities
// are non-negative floats, whose bit patterns order like their values, so a binary search over the
// 31-bit pattern finds the boundary value v (about 30 passes over the row), then a block scan over
// the tokens of probability exactly v, in id order, finds the boundary token. Sums are in double, as
// the reference's; their order differs, so a draw that falls within rounding of a boundary may pick
// the neighbouring token (measured by the gpu tests, not by equality).
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

extern "C" {
#include "base/common.h"
#include "kernels/ops.h"
}
#include "kernels/cuda/ops_cuda.h"

#define SAMPLE_THREADS 1024
#define ONE_BITS 0x3F800000u  // 1.0f

static __device__ uint64_t mix64_d(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static __device__ double uniform_d(uint64_t seed, uint64_t step) {
    return (double)(mix64_d(mix64_d(seed) ^ step) >> 11) * 0x1.0p-53;
}

// Sum over the block (every thread gets the total). sh: SAMPLE_THREADS/32 doubles.
static __device__ double block_sum(double x, double *sh) {
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    const int w = threadIdx.x / 32, l = threadIdx.x % 32, nw = blockDim.x / 32;
    __syncthreads();
    if (l == 0) sh[w] = x;
    __syncthreads();
    double t = 0;
    for (int i = 0; i < nw; i++) t += sh[i];
    return t;
}
// Minimum over the block of an int (every thread gets it).
static __device__ int block_min(int x, int *sh) {
    for (int o = 16; o > 0; o >>= 1) x = min(x, __shfl_xor_sync(0xffffffffu, x, o));
    const int w = threadIdx.x / 32, l = threadIdx.x % 32, nw = blockDim.x / 32;
    __syncthreads();
    if (l == 0) sh[w] = x;
    __syncthreads();
    int t = sh[0];
    for (int i = 1; i < nw; i++) t = min(t, sh[i]);
    return t;
}
// Inclusive prefix sum over the block (Hillis-Steele in shared memory). sh: SAMPLE_THREADS doubles.
static __device__ double block_scan(double x, double *sh) {
    __syncthreads();
    sh[threadIdx.x] = x;
    __syncthreads();
    for (int o = 1; o < (int)blockDim.x; o <<= 1) {
        double y = threadIdx.x >= (unsigned)o ? sh[threadIdx.x - o] : 0.0;
        __syncthreads();
        sh[threadIdx.x] += y;
        __syncthreads();
    }
    return sh[threadIdx.x];
}

// A prefix of the order: the tokens with bits > vb, and those with bits == vb and id <= jb.
struct prefix_t {
    uint32_t vb;
    int jb;
};
static __device__ __forceinline__ bool in_prefix(uint32_t bits, int i, prefix_t P) {
    return bits > P.vb || (bits == P.vb && i <= P.jb);
}

// count (mass = 0) or mass of the tokens of P with bits >= theta (strictly above when gt)
static __device__ double pass(const float *p, int V, prefix_t P, uint32_t theta, int gt, int mass, double *sh) {
    double acc = 0;
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        const uint32_t bits = __float_as_uint(p[i]);
        if (in_prefix(bits, i, P) && (gt ? bits > theta : bits >= theta)) acc += mass ? (double)p[i] : 1.0;
    }
    return block_sum(acc, sh);
}

// The shortest prefix of P whose count (mass = 0) or mass reaches `target` (>= target; > target when
// strict). Returns 0 when even all of P falls short (in these sums' rounding); else *out is the prefix
// (its last token out->jb).
static __device__ int shortest_prefix(const float *p, int V, prefix_t P, double target, int mass, int strict,
                                      prefix_t *out, double *sh, double *scan, int *ish) {
#define REACH(x) (strict ? (x) > target : (x) >= target)
    if (!REACH(pass(p, V, P, 0u, 0, mass, sh))) return 0;
    uint32_t lo = 0, hi = ONE_BITS + 1;  // REACH at lo; not at hi
    while (hi - lo > 1) {
        const uint32_t mid = lo + (hi - lo) / 2;
        if (REACH(pass(p, V, P, mid, 0, mass, sh))) lo = mid;
        else hi = mid;
    }
    // the tokens above lo fall short; walk the tokens at exactly lo in id order
    double carry = pass(p, V, P, lo, 1, mass, sh);
    for (int base = 0; base < V; base += blockDim.x) {
        const int i = base + threadIdx.x;
        double x = 0;
        if (i < V) {
            const uint32_t bits = __float_as_uint(p[i]);
            if (bits == lo && in_prefix(bits, i, P)) x = mass ? (double)p[i] : 1.0;
        }
        const double c = carry + block_scan(x, scan);
        const int hit = block_min(x != 0 && REACH(c) ? i : INT32_MAX, ish);
        if (hit != INT32_MAX) {
            out->vb = lo, out->jb = hit;
            return 1;
        }
        carry = carry + scan[blockDim.x - 1];
    }
#undef REACH
    // the tie group's own sum fell short of what the pass summed (rounding): as if P fell short
    return 0;
}

// the last token of P in the order: the smallest probability, then the largest id
static __device__ int last_of(const float *p, int V, prefix_t P, int *ish) {
    int bmin = INT32_MAX;  // bit patterns of probabilities in [0, 1] fit an int
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        const uint32_t bits = __float_as_uint(p[i]);
        if (in_prefix(bits, i, P)) bmin = min(bmin, (int)bits);
    }
    bmin = block_min(bmin, ish);
    int lowkey = INT32_MAX;  // V - 1 - id: the largest id as a minimum
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        const uint32_t bits = __float_as_uint(p[i]);
        if ((int)bits == bmin && in_prefix(bits, i, P)) lowkey = min(lowkey, V - 1 - i);
    }
    return V - 1 - block_min(lowkey, ish);
}

__global__ void __launch_bounds__(SAMPLE_THREADS) sample_kernel(int32_t *tok_out, float *logp_out, int32_t *done_out,
                                                                sample_slot_t *state, const int32_t *slot,
                                                                const float *logits, int V, float *pbuf) {
    __shared__ double sh[SAMPLE_THREADS / 32], scan[SAMPLE_THREADS];
    __shared__ int ish[SAMPLE_THREADS / 32];
    __shared__ float smax[SAMPLE_THREADS / 32];
    const int row = blockIdx.x;
    const float *z = logits + (size_t)row * V;
    float *p = pbuf + (size_t)row * V;
    sample_slot_t st = state[slot[row]];
    const double t = st.temperature > 0 ? st.temperature : 1.0;

    // max logit and its first index
    float mxf = -INFINITY;
    for (int i = threadIdx.x; i < V; i += blockDim.x) mxf = fmaxf(mxf, z[i]);
    for (int o = 16; o > 0; o >>= 1) mxf = fmaxf(mxf, __shfl_xor_sync(0xffffffffu, mxf, o));
    if (threadIdx.x % 32 == 0) smax[threadIdx.x / 32] = mxf;
    __syncthreads();
    mxf = smax[0];
    for (int w = 1; w < (int)blockDim.x / 32; w++) mxf = fmaxf(mxf, smax[w]);
    int first = INT32_MAX;
    for (int i = threadIdx.x; i < V; i += blockDim.x)
        if (z[i] == mxf) first = min(first, i);
    const int arg = block_min(first, ish);
    const double mx = (double)mxf;
    int tok = arg;
    // log pi(token)'s normaliser: tempered or not; when its temperature is the draw's, the draw's pass sums the
    // same exponentials (one double exp an element instead of two; x / 1.0 is x exactly)
    const double s = st.tempered_logp ? t : 1.0;
    double zs = -1;

    if (!st.greedy) {
        double part = 0, part_s = 0;
        for (int i = threadIdx.x; i < V; i += blockDim.x) {
            const double x = (double)z[i] - mx, e = exp(t == 1.0 ? x : x / t);
            part += (double)(p[i] = (float)e);
            part_s += e;
        }
        const double zt = block_sum(part, sh);
        if (s == t) zs = block_sum(part_s, sh);
        for (int i = threadIdx.x; i < V; i += blockDim.x) p[i] = (float)((double)p[i] / zt);
        __syncthreads();
        const int top_k = st.top_k > 0 && st.top_k < V ? st.top_k : 0;
        const int top_p = st.top_p > 0 && st.top_p < 1;
        const double u = uniform_d(st.seed, (uint64_t)st.n_gen);
        if (top_k || top_p) {
            prefix_t all = {0u, V - 1}, P = all;
            if (top_k) shortest_prefix(p, V, all, (double)top_k, 0, 0, &P, sh, scan, ish);
            double mass = top_k ? pass(p, V, P, 0u, 0, 1, sh) : 1.0;
            if (top_p) {
                prefix_t Q;
                if (shortest_prefix(p, V, P, st.top_p * mass, 1, 0, &Q, sh, scan, ish)) P = Q;
                mass = pass(p, V, P, 0u, 0, 1, sh);
            }
            prefix_t R;
            tok = shortest_prefix(p, V, P, u * mass, 1, 1, &R, sh, scan, ish) ? R.jb : last_of(p, V, P, ish);
        } else {  // inverse CDF over ids in order: each thread sums a run of consecutive ids, one block scan
            // of the runs, and the run whose span holds u walks its ids (one scan, not one per 1024 ids)
            const int S = (V + (int)blockDim.x - 1) / (int)blockDim.x, i0 = (int)threadIdx.x * S;
            const int i1 = min(V, i0 + S);
            double run = 0;
            for (int i = i0; i < i1; i++) run += (double)p[i];
            const double c = block_scan(run, scan), before = threadIdx.x ? scan[threadIdx.x - 1] : 0.0;
            int hit = INT32_MAX;
            if (u < c && !(u < before)) {  // the first run past u (the spans are ordered: scan is monotone)
                double acc = before;
                for (int i = i0; i < i1 && hit == INT32_MAX; i++) {
                    acc += (double)p[i];
                    if (u < acc && p[i] > 0) hit = i;
                }
                if (hit == INT32_MAX)  // the walk's rounding fell short of the scan's: the run's last possible id
                    for (int i = i1 - 1; i >= i0 && hit == INT32_MAX; i--)
                        if (p[i] > 0) hit = i;
            }
            hit = block_min(hit, ish);
            if (hit == INT32_MAX) {  // rounding shortfall: the most probable (lowest id on ties)
                float pm = 0;
                for (int i = threadIdx.x; i < V; i += blockDim.x) pm = fmaxf(pm, p[i]);
                for (int o = 16; o > 0; o >>= 1) pm = fmaxf(pm, __shfl_xor_sync(0xffffffffu, pm, o));
                __syncthreads();
                if (threadIdx.x % 32 == 0) smax[threadIdx.x / 32] = pm;
                __syncthreads();
                pm = smax[0];
                for (int w = 1; w < (int)blockDim.x / 32; w++) pm = fmaxf(pm, smax[w]);
                int f = INT32_MAX;
                for (int i = threadIdx.x; i < V; i += blockDim.x)
                    if (p[i] == pm) f = min(f, i);
                hit = block_min(f, ish);
            }
            tok = hit;
        }
    }
    // log pi(token) in double
    if (zs < 0) {
        double part = 0;
        for (int i = threadIdx.x; i < V; i += blockDim.x) part += exp(((double)z[i] - mx) / s);
        zs = block_sum(part, sh);
    }
    if (threadIdx.x == 0) {
        const double zt_ = (double)z[tok];
        const double lp = s == 1.0 ? zt_ - (mx + log(zs)) : (zt_ - mx) / s - log(zs);
        const float pr = (float)exp(lp);
        st.n_gen++;
        st.run = pr > st.rep_p ? st.run + 1 : 0;
        tok_out[row] = tok;
        logp_out[row] = (float)lp;
        done_out[row] = st.eos_id >= 0 && tok == st.eos_id     ? SAMPLE_DONE_EOS
                        : st.rep_n > 0 && st.run >= st.rep_n ? SAMPLE_DONE_REPETITION
                        : st.n_gen >= st.max_new             ? SAMPLE_DONE_LENGTH
                                                             : 0;
        state[slot[row]].n_gen = st.n_gen;
        state[slot[row]].run = st.run;
    }
}

extern "C" size_t sample_workspace_bytes_cuda(int n, int V) {
    return ((size_t)(n > 0 ? n : 0) * (size_t)(V > 0 ? V : 0) * sizeof(float) + 255) / 256 * 256;
}

extern "C" int sample_tokens_cuda(int32_t *tok, float *logp, int32_t *done, sample_slot_t *state, const int32_t *slot,
                                  const float *logits, int n, int V, void *ws, size_t ws_bytes, cudaStream_t st) {
    if (n < 0 || V < 1) return cispo_fail("sample_tokens_cuda: bad sizes n=%d V=%d", n, V);
    if (n == 0) return 0;
    if (ws_bytes < sample_workspace_bytes_cuda(n, V))
        return cispo_fail("sample_tokens_cuda: workspace of %zu bytes, %zu needed", ws_bytes,
                          sample_workspace_bytes_cuda(n, V));
    sample_kernel<<<n, SAMPLE_THREADS, 0, st>>>(tok, logp, done, state, slot, logits, V, (float *)ws);
    cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? 0 : cispo_fail("sample_tokens_cuda: launch: %s", cudaGetErrorString(e));
}
