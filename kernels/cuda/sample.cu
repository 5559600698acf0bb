// kernels/cuda/sample.cu — the sampling op on the GPU (kernels/ops.h sample_tokens; the reference and
// specification is kernels/cpu/sample.c): a cluster of CTAs per row of fp32 logits (one to eight, each a
// segment of the row; below) picks the next token, its log-prob and the stop state, so a decode step brings back
// ids, log-probs and done flags only. One CTA a row took 60 us at bench-1b's V 32768 at batch 1 (the row's
// double-precision exponentials and divisions on one SM); a few rows now spread over the card (sample_cluster).
// A CTA's segment of probabilities stays in its shared memory where it fits (prow_t; the global workspace
// otherwise), and the passes over the logits keep four loads in flight a thread.
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
#include "kernels/cuda/cluster.cuh"
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

// A row is split over a cluster of CTAs (sample_cluster: 1 to 8): CTA r of the cluster takes the ids of its
// segment [lo, hi) (seg_of), and a quantity of the whole row is the cluster's reduction of the CTAs' block
// reductions: each CTA leaves its value in its shared slot cx[ph], the cluster barrier (release / acquire)
// publishes it, every thread reads the cluster's values through distributed shared memory in rank order (so
// every CTA gets the same bits) and ph alternates between two slots (a slot is written again only after the
// next barrier, which every CTA reaches after its reads). Every branch below depends only on the row's state and
// such reductions, so all CTAs of a cluster take the same path through every barrier.

// the ids of this CTA's segment of a row of V
static __device__ __forceinline__ void seg_of(int V, int *lo, int *hi) {
    const int n = (int)cl_size(), r = (int)cl_rank(), seg = (V + n - 1) / n;
    *lo = min(V, r * seg), *hi = min(V, r * seg + seg);
}

enum { CL_SUM, CL_MIN, CL_MAX, CL_BEFORE };
typedef struct {
    double *cx;  // two exchange slots in shared memory
    int ph;
} cl_t;
// The cluster's reduction of x, one value a CTA (the same in every thread of the CTA): the sum, minimum or
// maximum over the CTAs, or (CL_BEFORE) the sum over the CTAs of lower rank.
static __device__ double cl_reduce(cl_t *c, double x, int op) {
    if (threadIdx.x == 0) c->cx[c->ph] = x;
    cl_sync();
    const unsigned n = cl_size(), me = cl_rank();
    double r = op == CL_MIN ? INFINITY : op == CL_MAX ? -INFINITY : 0.0;
    for (unsigned i = 0; i < n; i++) {
        if (op == CL_BEFORE && i >= me) break;
        const double v = cl_load_f64(c->cx + c->ph, i);
        r = op == CL_MIN ? fmin(r, v) : op == CL_MAX ? fmax(r, v) : r + v;
    }
    c->ph ^= 1;
    return r;
}

// The probabilities of a CTA's segment [lo, hi) of a row: in shared memory when they fit (s: one float of padding
// after every 32, so that the runs of consecutive ids the inverse-CDF draw gives each thread fall in distinct banks),
// else in the global workspace (g: the row's V floats). Every pass below reads only its CTA's segment.
typedef struct {
    float *s, *g;
    int lo;
} prow_t;
static __device__ __forceinline__ float *pat(prow_t p, int i) {
    const int j = i - p.lo;
    return p.s ? p.s + j + (j >> 5) : p.g + i;
}

// A prefix of the order: the tokens with bits > vb, and those with bits == vb and id <= jb.
struct prefix_t {
    uint32_t vb;
    int jb;
};
static __device__ __forceinline__ bool in_prefix(uint32_t bits, int i, prefix_t P) {
    return bits > P.vb || (bits == P.vb && i <= P.jb);
}

// count (mass = 0) or mass of the tokens of P with bits >= theta (strictly above when gt), over the row
static __device__ double pass(prow_t p, int V, prefix_t P, uint32_t theta, int gt, int mass, double *sh,
                              cl_t *c) {
    int lo, hi;
    seg_of(V, &lo, &hi);
    double acc = 0;
    for (int i = lo + threadIdx.x; i < hi; i += blockDim.x) {
        const uint32_t bits = __float_as_uint(*pat(p, i));
        if (in_prefix(bits, i, P) && (gt ? bits > theta : bits >= theta)) acc += mass ? (double)*pat(p, i) : 1.0;
    }
    return cl_reduce(c, block_sum(acc, sh), CL_SUM);
}

// The shortest prefix of P whose count (mass = 0) or mass reaches `target` (>= target; > target when
// strict). Returns 0 when even all of P falls short (in these sums' rounding); else *out is the prefix
// (its last token out->jb).
static __device__ int shortest_prefix(prow_t p, int V, prefix_t P, double target, int mass, int strict,
                                      prefix_t *out, double *sh, double *scan, int *ish, cl_t *c) {
#define REACH(x) (strict ? (x) > target : (x) >= target)
    if (!REACH(pass(p, V, P, 0u, 0, mass, sh, c))) return 0;
    uint32_t lo = 0, hi = ONE_BITS + 1;  // REACH at lo; not at hi
    while (hi - lo > 1) {
        const uint32_t mid = lo + (hi - lo) / 2;
        if (REACH(pass(p, V, P, mid, 0, mass, sh, c))) lo = mid;
        else hi = mid;
    }
    // the tokens above lo fall short; walk the tokens at exactly lo in id order: each CTA its segment, from what
    // the row holds above lo plus the tie group's share in the segments before its own
    int s0, s1;
    seg_of(V, &s0, &s1);
    double carry = pass(p, V, P, lo, 1, mass, sh, c), mine = 0;
    for (int i = s0 + threadIdx.x; i < s1; i += blockDim.x) {
        const uint32_t bits = __float_as_uint(*pat(p, i));
        if (bits == lo && in_prefix(bits, i, P)) mine += mass ? (double)*pat(p, i) : 1.0;
    }
    carry += cl_reduce(c, block_sum(mine, sh), CL_BEFORE);
    int hit = INT32_MAX;
    for (int base = s0; base < s1; base += blockDim.x) {
        const int i = base + threadIdx.x;
        double x = 0;
        if (i < s1) {
            const uint32_t bits = __float_as_uint(*pat(p, i));
            if (bits == lo && in_prefix(bits, i, P)) x = mass ? (double)*pat(p, i) : 1.0;
        }
        const double cs = carry + block_scan(x, scan);
        hit = block_min(x != 0 && REACH(cs) ? i : INT32_MAX, ish);
        if (hit != INT32_MAX) break;
        carry = carry + scan[blockDim.x - 1];
    }
    hit = (int)cl_reduce(c, (double)hit, CL_MIN);  // the first in id order: the lowest id of any segment's
    if (hit != INT32_MAX) {
        out->vb = lo, out->jb = hit;
        return 1;
    }
#undef REACH
    // the tie group's own sum fell short of what the pass summed (rounding): as if P fell short
    return 0;
}

// the last token of P in the order: the smallest probability, then the largest id
static __device__ int last_of(prow_t p, int V, prefix_t P, int *ish, cl_t *c) {
    int lo, hi;
    seg_of(V, &lo, &hi);
    int bmin = INT32_MAX;  // bit patterns of probabilities in [0, 1] fit an int
    for (int i = lo + threadIdx.x; i < hi; i += blockDim.x) {
        const uint32_t bits = __float_as_uint(*pat(p, i));
        if (in_prefix(bits, i, P)) bmin = min(bmin, (int)bits);
    }
    bmin = (int)cl_reduce(c, (double)block_min(bmin, ish), CL_MIN);
    int lowkey = INT32_MAX;  // V - 1 - id: the largest id as a minimum
    for (int i = lo + threadIdx.x; i < hi; i += blockDim.x) {
        const uint32_t bits = __float_as_uint(*pat(p, i));
        if ((int)bits == bmin && in_prefix(bits, i, P)) lowkey = min(lowkey, V - 1 - i);
    }
    return V - 1 - (int)cl_reduce(c, (double)block_min(lowkey, ish), CL_MIN);
}

// Maximum over the block (every thread gets it). sh: SAMPLE_THREADS/32 floats.
static __device__ float block_maxf(float x, float *sh) {
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    __syncthreads();
    if (threadIdx.x % 32 == 0) sh[threadIdx.x / 32] = x;
    __syncthreads();
    x = sh[0];
    for (int w = 1; w < (int)blockDim.x / 32; w++) x = fmaxf(x, sh[w]);
    return x;
}

// One cluster of CTAs per row (blockIdx.x / cluster size); CTA rank 0 writes the row's results.
__global__ void __launch_bounds__(SAMPLE_THREADS) sample_kernel(int32_t *tok_out, float *logp_out, int32_t *done_out,
                                                                sample_slot_t *state, const int32_t *slot,
                                                                const float *logits, int V, float *pbuf,
                                                                int in_smem) {
    extern __shared__ float sp[];  // the segment's probabilities when in_smem (sample_smem_bytes)
    __shared__ double sh[SAMPLE_THREADS / 32], scan[SAMPLE_THREADS], cx[2];
    __shared__ int ish[SAMPLE_THREADS / 32];
    __shared__ float smax[SAMPLE_THREADS / 32];
    cl_t c = {cx, 0};
    const int row = blockIdx.x / (int)cl_size();
    int lo, hi;
    seg_of(V, &lo, &hi);
    const float *z = logits + (size_t)row * V;
    const prow_t p = {in_smem ? sp : NULL, pbuf + (size_t)row * V, lo};
    sample_slot_t st = state[slot[row]];
    const double t = st.temperature > 0 ? st.temperature : 1.0;

    // max logit and its first index, in one pass with four loads in flight a thread (NaN never wins, as in fmaxf; a row
    // of -inf gives its first id)
    float mxf = -INFINITY;
    int first = INT32_MAX;
    const int bd = (int)blockDim.x;
    for (int i = lo + (int)threadIdx.x; i < hi; i += 4 * bd) {
        float x[4];
#pragma unroll
        for (int k = 0; k < 4; k++) x[k] = i + k * bd < hi ? z[i + k * bd] : NAN;
#pragma unroll
        for (int k = 0; k < 4; k++)
            if (x[k] > mxf || (first == INT32_MAX && x[k] == mxf)) mxf = x[k], first = i + k * bd;
    }
    {
        const float m = (float)cl_reduce(&c, (double)block_maxf(mxf, smax), CL_MAX);
        first = mxf == m ? first : INT32_MAX;
        mxf = m;
    }
    const int arg = (int)cl_reduce(&c, (double)block_min(first, ish), CL_MIN);
    const double mx = (double)mxf;
    int tok = arg;
    // log pi(token)'s normaliser: tempered or not; when its temperature is the draw's, the draw's pass sums the
    // same exponentials (one double exp an element instead of two; x / 1.0 is x exactly)
    const double s = st.tempered_logp ? t : 1.0;
    double zs = -1;

    if (!st.greedy) {
        double part = 0, part_s = 0;
        for (int i0 = lo + (int)threadIdx.x; i0 < hi; i0 += 4 * bd) {  // four loads in flight; sums in id order
            float zl[4];
#pragma unroll
            for (int k = 0; k < 4; k++) zl[k] = i0 + k * bd < hi ? z[i0 + k * bd] : 0.0f;
#pragma unroll
            for (int k = 0; k < 4; k++) {
                const int i = i0 + k * bd;
                if (i >= hi) break;
                const double x = (double)zl[k] - mx, e = exp(t == 1.0 ? x : x / t);
                part += (double)(*pat(p, i) = (float)e);
                part_s += e;
            }
        }
        const double zt = cl_reduce(&c, block_sum(part, sh), CL_SUM);
        if (s == t) zs = cl_reduce(&c, block_sum(part_s, sh), CL_SUM);
        for (int i = lo + threadIdx.x; i < hi; i += blockDim.x) *pat(p, i) = (float)((double)*pat(p, i) / zt);
        __syncthreads();
        const int top_k = st.top_k > 0 && st.top_k < V ? st.top_k : 0;
        const int top_p = st.top_p > 0 && st.top_p < 1;
        const double u = uniform_d(st.seed, (uint64_t)st.n_gen);
        if (top_k || top_p) {
            prefix_t all = {0u, V - 1}, P = all;
            if (top_k) shortest_prefix(p, V, all, (double)top_k, 0, 0, &P, sh, scan, ish, &c);
            double mass = top_k ? pass(p, V, P, 0u, 0, 1, sh, &c) : 1.0;
            if (top_p) {
                prefix_t Q;
                if (shortest_prefix(p, V, P, st.top_p * mass, 1, 0, &Q, sh, scan, ish, &c)) P = Q;
                mass = pass(p, V, P, 0u, 0, 1, sh, &c);
            }
            prefix_t R;
            tok = shortest_prefix(p, V, P, u * mass, 1, 1, &R, sh, scan, ish, &c) ? R.jb : last_of(p, V, P, ish, &c);
        } else {  // inverse CDF over ids in order: each thread sums a run of consecutive ids of its CTA's segment,
            // one block scan of the runs plus the segments before, and the run whose span holds u walks its ids
            const int S = (hi - lo + (int)blockDim.x - 1) / (int)blockDim.x, i0 = min(hi, lo + (int)threadIdx.x * S);
            const int i1 = min(hi, i0 + S);
            double run = 0;
            for (int i = i0; i < i1; i++) run += (double)*pat(p, i);
            const double local = block_scan(run, scan);
            const double segs = cl_reduce(&c, scan[blockDim.x - 1], CL_BEFORE);
            const double cs = segs + local, before = segs + (threadIdx.x ? scan[threadIdx.x - 1] : 0.0);
            int hit = INT32_MAX;
            if (u < cs && !(u < before)) {  // the first run past u (the spans are ordered: the scan is monotone)
                double acc = before;
                for (int i = i0; i < i1 && hit == INT32_MAX; i++) {
                    acc += (double)*pat(p, i);
                    if (u < acc && *pat(p, i) > 0) hit = i;
                }
                if (hit == INT32_MAX)  // the walk's rounding fell short of the scan's: the run's last possible id
                    for (int i = i1 - 1; i >= i0 && hit == INT32_MAX; i--)
                        if (*pat(p, i) > 0) hit = i;
            }
            hit = (int)cl_reduce(&c, (double)block_min(hit, ish), CL_MIN);
            if (hit == INT32_MAX) {  // rounding shortfall: the most probable (lowest id on ties)
                float pm = 0;
                for (int i = lo + threadIdx.x; i < hi; i += blockDim.x) pm = fmaxf(pm, *pat(p, i));
                pm = (float)cl_reduce(&c, (double)block_maxf(pm, smax), CL_MAX);
                int f = INT32_MAX;
                for (int i = lo + threadIdx.x; i < hi; i += blockDim.x)
                    if (*pat(p, i) == pm) f = min(f, i);
                hit = (int)cl_reduce(&c, (double)block_min(f, ish), CL_MIN);
            }
            tok = hit;
        }
    }
    // log pi(token) in double
    if (zs < 0) {
        double part = 0;
        for (int i0 = lo + (int)threadIdx.x; i0 < hi; i0 += 4 * bd) {
            float zl[4];
#pragma unroll
            for (int k = 0; k < 4; k++) zl[k] = i0 + k * bd < hi ? z[i0 + k * bd] : 0.0f;
#pragma unroll
            for (int k = 0; k < 4; k++)
                if (i0 + k * bd < hi) part += exp(((double)zl[k] - mx) / s);
        }
        zs = cl_reduce(&c, block_sum(part, sh), CL_SUM);
    }
    if (threadIdx.x == 0 && cl_rank() == 0) {
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
    cl_sync();  // no CTA leaves while another may still read its exchange slots
}

// CTAs a row: `forced` (the tuning knob sample_cluster) when 1, 2, 4 or 8; else 8, 4 or 2 while each keeps at least
// SAMPLE_MIN_SEG ids and the n rows' clusters take at most half the SMs, else 1. On an H100 at V 32768
// (test_backend_ops --perf, bench/decode_ab.sh): clusters of 8 made bench-1b's decode step at batch 1 0.812 against
// 0.845 ms, but 64 rows in clusters of 8 took 115.8 against 70.6 us (2.261 against 2.182 ms a step at batch 64):
// with rows enough to fill the card, one CTA a row does less waiting at barriers.
#define SAMPLE_MIN_SEG 2048
static int sample_cluster(int n, int V, int forced) {
    static int sms = -1;
    if (forced == 1 || forced == 2 || forced == 4 || forced == 8) return forced;
    if (sms < 0) {
        int dev = 0;
        if (cudaGetDevice(&dev) != cudaSuccess ||
            cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess)
            sms = 0;
    }
    int c = 8;
    while (c > 1 && (V / c < SAMPLE_MIN_SEG || (long)n * c > sms / 2)) c /= 2;
    return c;
}

// The shared memory of a segment's probabilities (prow_t's padded layout), and the most a CTA takes (beside the
// kernel's 8.5 KB of static shared memory, under the 227 KB a CTA may have on sm_90): segments up to 53,600 ids,
// so V 32768 on one CTA a row; a longer segment keeps its probabilities in the global workspace.
#define SAMPLE_SMEM_MAX (216 * 1024)
static size_t sample_smem_bytes(int seg) { return ((size_t)seg + (size_t)seg / 32 + 1) * sizeof(float); }

extern "C" size_t sample_workspace_bytes_cuda(int n, int V) {
    return ((size_t)(n > 0 ? n : 0) * (size_t)(V > 0 ? V : 0) * sizeof(float) + 255) / 256 * 256;
}

extern "C" int sample_tokens_cuda(int32_t *tok, float *logp, int32_t *done, sample_slot_t *state, const int32_t *slot,
                                  const float *logits, int n, int V, int cluster, void *ws, size_t ws_bytes,
                                  cudaStream_t st) {
    if (n < 0 || V < 1) return cispo_fail("sample_tokens_cuda: bad sizes n=%d V=%d", n, V);
    if (n == 0) return 0;
    if (ws_bytes < sample_workspace_bytes_cuda(n, V))
        return cispo_fail("sample_tokens_cuda: workspace of %zu bytes, %zu needed", ws_bytes,
                          sample_workspace_bytes_cuda(n, V));
    const int cl = sample_cluster(n, V, cluster);
    const size_t smem = sample_smem_bytes((V + cl - 1) / cl);
    const int in_smem = smem <= SAMPLE_SMEM_MAX;
    static bool attr_set = false;
    if (in_smem && !attr_set) {
        cudaError_t e = cudaFuncSetAttribute(sample_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, SAMPLE_SMEM_MAX);
        if (e != cudaSuccess) return cispo_fail("sample_tokens_cuda: shared memory attribute: %s", cudaGetErrorString(e));
        attr_set = true;
    }
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute attr;
    cfg.gridDim = dim3((unsigned)(n * cl)), cfg.blockDim = dim3(SAMPLE_THREADS);
    cfg.dynamicSmemBytes = in_smem ? smem : 0, cfg.stream = st;
    attr.id = cudaLaunchAttributeClusterDimension;
    attr.val.clusterDim.x = (unsigned)cl, attr.val.clusterDim.y = 1, attr.val.clusterDim.z = 1;
    cfg.attrs = &attr, cfg.numAttrs = 1;
    cudaError_t e =
        cudaLaunchKernelEx(&cfg, sample_kernel, tok, logp, done, state, slot, logits, V, (float *)ws, in_smem);
    if (e == cudaSuccess) e = cudaGetLastError();
    return e == cudaSuccess ? 0 : cispo_fail("sample_tokens_cuda: launch: %s", cudaGetErrorString(e));
}
