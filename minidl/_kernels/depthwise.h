/* Depth-wise convolution on small planes (float32, AVX-512 F): one plane's output is a
   few 16-lane vectors, each tap's input vector is gathered at once, so no padded copy,
   no row loop and no junk columns.

   A table (minidl_dws_table, built once per call) says, for every output vector v and
   tap k, which source element each lane reads (or none: padding, a stride's gap, past
   the plane).  The ways to gather, chosen by minidl_dws_build:
     LOADS     the lane's source index is e + off[k] (e: the lane's flat output index),
               so the tap vector is one masked unaligned load (stride 1 with Wo == W;
               masked lanes never fault);
     PERMUTES  the source plane (<= 64 floats) sits in up to four registers and each tap
               vector is one lane permutation of them (any stride), or of its even or
               odd half when every tap reads only one of them (split: column stride 2);
     PHASES    LOADS on the plane first split into its stride phases (a strided
               correlation on planes too large for PERMUTES).
   Correlation (the forward, the weight gradient): out (Ho, Wo) reads src (H, W) at
   row oh*sh + i*dh - ph, column ow*sw + t*dw - pw.  Transposed (the input gradient):
   out (H, W) reads src (Ho, Wo) at row (h + ph - i*dh) / sh when that divides, so
   dx = Σ_taps w[i, t] * gathered dY with the filter as it is.
   A plane has only 1 to 4 output vectors, so several planes are computed side by side
   (one multiply-add chain a vector, 8 in flight), sharing each tap's table entries.
   Each output is a fixed sequence of operations: results do not depend on how planes
   are split between threads. */
#ifndef MINIDL_DEPTHWISE_H
#define MINIDL_DEPTHWISE_H

#include <stdlib.h>
#include <string.h>
#include "cpu_level.h"

enum { MINIDL_DWS_NONE = 0, MINIDL_DWS_LOADS = 1, MINIDL_DWS_PERMUTES = 2 };
enum { MINIDL_DWS_MAX_TAPS = 25, MINIDL_DWS_MAX_OUT = 4096, MINIDL_DWS_MAX_SRC = 64 };

typedef struct {
    int mode;                          /* MINIDL_DWS_*: NONE if the plane is not small */
    int nvec, taps, nreg;              /* output vectors, taps, source registers */
    Py_ssize_t src_len, out_len;       /* elements of a source / an output plane */
    Py_ssize_t off[MINIDL_DWS_MAX_TAPS];  /* LOADS: source offset of tap k */
    unsigned short* mask;              /* [v * taps + k]: lanes that read something */
    unsigned short* hi;                /* PERMUTES: lanes read from registers 2 and 3 */
    int* idx;                          /* PERMUTES: [(v * taps + k) * 16 + lane] */
    unsigned short regmask[4];         /* PERMUTES: lanes of register q inside the plane */
    /* PERMUTES of 33 to 64 floats where each tap reads only even or only odd elements:
       the plane is first split into its even and its odd elements (two registers each),
       tap k permutes pair[k] (idx: the element's place in its half) */
    int split;
    unsigned char pair[MINIDL_DWS_MAX_TAPS];
    /* PHASES (LOADS on a rearranged plane): the source plane (H, W) is first split into
       sh*sw phase planes of Hq rows at pitch Wq (phase (a, b): rows a, a + sh, ...,
       columns b, b + sw, ...), which turns a strided correlation into LOADS */
    int phases;
    Py_ssize_t H, W, sh, sw, Hq, Wq, phase_len;
} minidl_dws_table;

static void minidl_dws_free(minidl_dws_table* tb)
{
    free(tb->mask);
    free(tb->hi);
    free(tb->idx);
    tb->mask = tb->hi = NULL;
    tb->idx = NULL;
}

/* Record that output e reads source element src at tap k. */
static void minidl_dws_entry(minidl_dws_table* tb, Py_ssize_t k, Py_ssize_t e, Py_ssize_t src,
                             int* seen, int* loads)
{
    Py_ssize_t at = (e / 16) * tb->taps + k;
    int lane = (int)(e % 16);
    tb->mask[at] |= (unsigned short)(1u << lane);
    if (tb->idx != NULL) {
        if (src >= 32) tb->hi[at] |= (unsigned short)(1u << lane);
        tb->idx[at * 16 + lane] = (int)src;  /* made a register lane at the end */
    }
    if (!seen[k]) {
        tb->off[k] = src - e;
        tb->pair[k] = (unsigned char)(src & 1);
    } else {
        if (src - e != tb->off[k]) *loads = 0;
        if ((src & 1) != tb->pair[k]) tb->split = 0;
    }
    seen[k] = 1;
}

/* Fill tb for out (Hout, Wout) from src (Hs, Ws); tb->mode says which way (NONE: the
   planes are too large for either, or the filter has too many taps).  -1 if out of
   memory.  Correlation: out (r, q) reads src (r*sh + i*dh - ph, q*sw + t*dw - pw);
   transposed: src (r, q) is read by out (r*sh + i*dh - ph, q*sw + t*dw - pw). */
static int minidl_dws_build(minidl_dws_table* tb, int transposed, int phases, Py_ssize_t Hs,
                            Py_ssize_t Ws, Py_ssize_t Hout, Py_ssize_t Wout, Py_ssize_t kh,
                            Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph,
                            Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw)
{
    Py_ssize_t k, r, q, R, Q, Hb, Wb, Hsm, Wsm, n;
    int loads = 1, seen[MINIDL_DWS_MAX_TAPS] = {0}, permutes;
    memset(tb, 0, sizeof(*tb));
    tb->taps = (int)(kh * kw);
    tb->src_len = Hs * Ws;
    tb->out_len = Hout * Wout;
    if (tb->taps > MINIDL_DWS_MAX_TAPS || tb->out_len > MINIDL_DWS_MAX_OUT
        || tb->out_len < 1 || tb->src_len < 1)
        return 0;
    if (phases) {  /* correlation only, columns split in at most 2, one row pitch Wout */
        if (transposed || sw > 2 || (Ws + sw - 1) / sw > Wout) return 0;
        tb->phases = 1;
        tb->H = Hs;
        tb->W = Ws;
        tb->sh = sh;
        tb->sw = sw;
        tb->Hq = (Hs + sh - 1) / sh;
        tb->Wq = Wout;
        tb->phase_len = tb->Hq * tb->Wq;
        tb->src_len = sh * sw * tb->phase_len;
    }
    permutes = !phases && tb->src_len <= MINIDL_DWS_MAX_SRC && tb->out_len <= MINIDL_DWS_MAX_SRC;
    tb->nvec = (int)((tb->out_len + 15) / 16);
    n = (Py_ssize_t)tb->nvec * tb->taps;
    tb->mask = (unsigned short*)calloc((size_t)n, sizeof(unsigned short));
    tb->hi = (unsigned short*)calloc((size_t)n, sizeof(unsigned short));
    tb->idx = permutes ? (int*)calloc((size_t)n * 16, sizeof(int)) : NULL;
    if (tb->mask == NULL || tb->hi == NULL || (permutes && tb->idx == NULL)) {
        minidl_dws_free(tb);
        return -1;
    }
    tb->split = 1;
    /* (r, q) runs over the smaller side's plane, (R, Q) is the larger side's position */
    Hsm = transposed ? Hs : Hout;
    Wsm = transposed ? Ws : Wout;
    Hb = transposed ? Hout : Hs;
    Wb = transposed ? Wout : Ws;
    for (k = 0; k < tb->taps; k++)
        for (r = 0; r < Hsm; r++) {
            R = r * sh + (k / kw) * dh - ph;
            if (R < 0 || R >= Hb) continue;
            for (q = 0; q < Wsm; q++) {
                Q = q * sw + (k % kw) * dw - pw;
                if (Q < 0 || Q >= Wb) continue;
                if (transposed)
                    minidl_dws_entry(tb, k, R * Wout + Q, r * Ws + q, seen, &loads);
                else if (phases)
                    minidl_dws_entry(tb, k, r * Wout + q,
                                     ((R % sh) * sw + Q % sw) * tb->phase_len
                                     + (R / sh) * tb->Wq + Q / sw, seen, &loads);
                else
                    minidl_dws_entry(tb, k, r * Wout + q, R * Ws + Q, seen, &loads);
            }
        }
    if (loads) {
        tb->mode = MINIDL_DWS_LOADS;
    } else if (phases) {
        minidl_dws_free(tb);
    } else if (permutes) {
        tb->mode = MINIDL_DWS_PERMUTES;
        tb->nreg = (int)((tb->src_len + 15) / 16);
        tb->split = tb->split && tb->nreg > 2;
        for (k = 0; k < n * 16; k++)
            tb->idx[k] = tb->split ? tb->idx[k] >> 1 : tb->idx[k] & 31;
        for (k = 0; k < 4; k++) {
            Py_ssize_t rest = tb->src_len - 16 * k;
            tb->regmask[k] = (unsigned short)(rest >= 16 ? 0xFFFF : rest > 0 ? (1u << rest) - 1 : 0);
        }
    }
    if (tb->mode != MINIDL_DWS_PERMUTES) tb->split = 0;
    return 0;
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define MINIDL_DWS_AVX512 1
#define MINIDL_DWS_TARGET __attribute__((target("avx512f")))
#define MINIDL_DWS_INLINE __attribute__((target("avx512f"), always_inline)) static inline

/* Output vectors computed side by side: one multiply-add chain each, GROUP chains in
   flight hide the multiply-add latency (a plane has only 1 to 4 vectors). */
enum { MINIDL_DWS_GROUP = 8 };

/* Tap k's input vector for output vector v of the plane at src (zeros where nothing is
   read).  mode and nreg are constants where it is inlined.  PERMUTES reads the source
   registers from memory (L1) each time: the permutations, not the loads, are the
   bottleneck, and GROUP planes' registers would not fit. */
MINIDL_DWS_INLINE __m512 minidl_dws_tap(const minidl_dws_table* tb, const int mode,
                                        const int nreg, const float* src, int v, int k)
{
    Py_ssize_t e = (Py_ssize_t)v * tb->taps + k;
    __mmask16 m = tb->mask[e], h;
    __m512i idx;
    __m512 r0, r1, r2, r3;
    if (mode == MINIDL_DWS_LOADS)
        return _mm512_maskz_loadu_ps(m, src + (Py_ssize_t)v * 16 + tb->off[k]);
    idx = _mm512_loadu_si512((const void*)(tb->idx + e * 16));
    r0 = _mm512_maskz_loadu_ps(tb->regmask[0], src);
    if (nreg == 1) return _mm512_maskz_permutexvar_ps(m, idx, r0);
    r1 = _mm512_maskz_loadu_ps(tb->regmask[1], src + 16);
    if (nreg == 2) return _mm512_maskz_permutex2var_ps(m, r0, idx, r1);
    r2 = _mm512_maskz_loadu_ps(tb->regmask[2], src + 32);
    r3 = _mm512_maskz_loadu_ps(tb->regmask[3], src + 48);
    if (tb->split) {
        const __m512i half = _mm512_add_epi32(_mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16,
                                                               14, 12, 10, 8, 6, 4, 2, 0),
                                              _mm512_set1_epi32(tb->pair[k]));
        return _mm512_maskz_permutex2var_ps(m, _mm512_permutex2var_ps(r0, half, r1), idx,
                                            _mm512_permutex2var_ps(r2, half, r3));
    }
    h = tb->hi[e];
    return _mm512_mask_mov_ps(_mm512_maskz_permutex2var_ps(m & ~h, r0, idx, r1), m & h,
                              _mm512_permutex2var_ps(r2, idx, r3));
}

/* tb->split: the even elements of the plane at src into h[0..1], the odd ones into
   h[2..3]. */
MINIDL_DWS_INLINE void minidl_dws_halves(const minidl_dws_table* tb, const float* src, __m512* h)
{
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    __m512 r0 = _mm512_maskz_loadu_ps(tb->regmask[0], src);
    __m512 r1 = _mm512_maskz_loadu_ps(tb->regmask[1], src + 16);
    __m512 r2 = _mm512_maskz_loadu_ps(tb->regmask[2], src + 32);
    __m512 r3 = _mm512_maskz_loadu_ps(tb->regmask[3], src + 48);
    h[0] = _mm512_permutex2var_ps(r0, even, r1);
    h[1] = _mm512_permutex2var_ps(r2, even, r3);
    h[2] = _mm512_permutex2var_ps(r0, odd, r1);
    h[3] = _mm512_permutex2var_ps(r2, odd, r3);
}

/* tb->split: tap k's input vector for output vector v from the halves h. */
MINIDL_DWS_INLINE __m512 minidl_dws_tap_split(const minidl_dws_table* tb, const __m512* h,
                                              int v, int k)
{
    Py_ssize_t e = (Py_ssize_t)v * tb->taps + k;
    __m512i idx = _mm512_loadu_si512((const void*)(tb->idx + e * 16));
    return tb->pair[k] ? _mm512_maskz_permutex2var_ps(tb->mask[e], h[2], idx, h[3])
                       : _mm512_maskz_permutex2var_ps(tb->mask[e], h[0], idx, h[1]);
}

MINIDL_DWS_INLINE __mmask16 minidl_dws_out_mask(const minidl_dws_table* tb, int v)
{
    Py_ssize_t rest = tb->out_len - (Py_ssize_t)v * 16;
    return rest >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << rest) - 1);
}

/* tb->phases: the phase planes of one (H, W) plane x into buf (tb->src_len floats;
   elements outside the plane are left as they are: no mask reads them). */
MINIDL_DWS_TARGET static void minidl_dws_split(const minidl_dws_table* tb, const float* x,
                                               float* buf)
{
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    Py_ssize_t r, q, n;
    for (r = 0; r < tb->H; r++) {
        const float* row = x + r * tb->W;
        float* dst = buf + (r % tb->sh) * tb->sw * tb->phase_len + (r / tb->sh) * tb->Wq;
        for (q = 0; q < tb->W; q += tb->sw * 16) {
            n = tb->W - q;
            __mmask16 m0 = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
            __m512 lo = _mm512_maskz_loadu_ps(m0, row + q);
            if (tb->sw == 1) {
                _mm512_mask_storeu_ps(dst + q, m0, lo);
            } else {
                __mmask16 m1 = n >= 32 ? (__mmask16)0xFFFF
                             : n > 16 ? (__mmask16)((1u << (n - 16)) - 1) : (__mmask16)0;
                __m512 hi = _mm512_maskz_loadu_ps(m1, row + q + 16);
                Py_ssize_t ne = n >= 32 ? 16 : (n + 1) / 2, no = n >= 32 ? 16 : n / 2;
                _mm512_mask_storeu_ps(dst + q / 2, (__mmask16)((1u << ne) - 1),
                                      _mm512_permutex2var_ps(lo, even, hi));
                _mm512_mask_storeu_ps(dst + tb->phase_len + q / 2, (__mmask16)((1u << no) - 1),
                                      _mm512_permutex2var_ps(lo, odd, hi));
            }
        }
    }
}

/* One pass over planes p0..p1-1 in groups of GROUP output vectors (v of plane p, for j
   < jobs_m; the last group repeats its last vector, which rewrites the same values).
   transposed == 0: the forward, vector (p, j, v) of y[p*m + j] = bias + Σ_k tap * w[f, k]
   (f = (p % C)*m + j).  transposed == 1: the input gradient, vector (p, v) of dx[p] =
   Σ_j Σ_k tap of dY[p*m + j] * w[f, k].  Every vector's sum runs in the same order
   whatever the group, so results do not depend on the split into tasks.  Source plane
   of p: src0 + (p - sp0) * (planes per p) * src_len. */
MINIDL_DWS_INLINE void minidl_dws_pass(const minidl_dws_table* tb, const int mode,
                                       const int nreg, const int transposed, const float* src0,
                                       const float* w, const float* b, float* dst,
                                       Py_ssize_t C, Py_ssize_t m, Py_ssize_t p0, Py_ssize_t p1,
                                       Py_ssize_t sp0)
{
    const float* src[MINIDL_DWS_GROUP];
    const float* wp[MINIDL_DWS_GROUP];
    float* out[MINIDL_DWS_GROUP];
    int vv[MINIDL_DWS_GROUP];
    __m512 acc[MINIDL_DWS_GROUP];
    const Py_ssize_t jm = transposed ? 1 : m;   /* output planes per input plane */
    const int taps = tb->taps, nvec = tb->nvec;
    Py_ssize_t p = p0, j = 0, c = p0 % C, jj;
    int v = 0, g, k;
    while (p < p1) {
#pragma GCC unroll 8
        for (g = 0; g < MINIDL_DWS_GROUP; g++) {
            if (p < p1) {
                if (transposed) {
                    src[g] = src0 + (p - sp0) * m * tb->src_len;
                    wp[g] = w + c * m * taps;
                    out[g] = dst + p * tb->out_len + (Py_ssize_t)v * 16;
                    acc[g] = _mm512_setzero_ps();
                } else {
                    src[g] = src0 + (p - sp0) * tb->src_len;
                    wp[g] = w + (c * m + j) * taps;
                    out[g] = dst + (p * m + j) * tb->out_len + (Py_ssize_t)v * 16;
                    acc[g] = _mm512_set1_ps(b != NULL ? b[c * m + j] : 0.0f);
                }
                vv[g] = v;
                if (++v == nvec) {
                    v = 0;
                    if (++j == jm) {
                        j = 0;
                        p++;
                        if (++c == C) c = 0;
                    }
                }
            } else {
                src[g] = src[g - 1];
                wp[g] = wp[g - 1];
                out[g] = out[g - 1];
                vv[g] = vv[g - 1];
                acc[g] = acc[g - 1];
            }
        }
        for (jj = 0; jj < (transposed ? m : 1); jj++)
            for (k = 0; k < taps; k++)
#pragma GCC unroll 8
                for (g = 0; g < MINIDL_DWS_GROUP; g++)
                    acc[g] = _mm512_fmadd_ps(
                        minidl_dws_tap(tb, mode, nreg, src[g] + jj * tb->src_len, vv[g], k),
                        _mm512_set1_ps(wp[g][jj * taps + k]), acc[g]);
#pragma GCC unroll 8
        for (g = 0; g < MINIDL_DWS_GROUP; g++)
            _mm512_mask_storeu_ps(out[g], minidl_dws_out_mask(tb, vv[g]), acc[g]);
    }
}

/* minidl_dws_pass for NV (1, 2 or 4) vectors a plane, LOADS (NREG 0) or PERMUTES from
   NREG (1 or 2) registers or from a split plane (NREG 3: 4 registers, fewer planes): GROUP / NV output planes side by side, each tap's masks and
   offset or permutations read once for all of them (and the source registers once a
   plane).  The same sums in the same order as minidl_dws_pass. */
MINIDL_DWS_INLINE void minidl_dws_pass_planes(const minidl_dws_table* tb, const int NV,
                                              const int NREG, const int transposed,
                                              const float* src0,
                                              const float* w, const float* b, float* dst,
                                              Py_ssize_t C, Py_ssize_t m, Py_ssize_t p0,
                                              Py_ssize_t p1, Py_ssize_t sp0)
{
    enum { PMAX = MINIDL_DWS_GROUP };
    const int PP = NREG == 3 && NV == 1 ? 4 : MINIDL_DWS_GROUP / NV;  /* registers */
    const float* src[PMAX];
    const float* wp[PMAX];
    float* out[PMAX];
    __m512 acc[PMAX][4], reg[PMAX][4];
    __m512i ix[4];
    __mmask16 mk[4], om[4];
    const Py_ssize_t jm = transposed ? 1 : m;
    const int taps = tb->taps;
    Py_ssize_t p = p0, j = 0, c = p0 % C, jj, o;
    int v, q, k;
    for (v = 0; v < NV; v++) om[v] = minidl_dws_out_mask(tb, v);
    while (p < p1) {
#pragma GCC unroll 8
        for (q = 0; q < PP; q++) {
            if (p < p1) {
                __m512 init;
                if (transposed) {
                    src[q] = src0 + (p - sp0) * m * tb->src_len;
                    wp[q] = w + c * m * taps;
                    out[q] = dst + p * tb->out_len;
                    init = _mm512_setzero_ps();
                } else {
                    src[q] = src0 + (p - sp0) * tb->src_len;
                    wp[q] = w + (c * m + j) * taps;
                    out[q] = dst + (p * m + j) * tb->out_len;
                    init = _mm512_set1_ps(b != NULL ? b[c * m + j] : 0.0f);
                }
#pragma GCC unroll 4
                for (v = 0; v < NV; v++) acc[q][v] = init;
                if (++j == jm) {
                    j = 0;
                    p++;
                    if (++c == C) c = 0;
                }
            } else {
                src[q] = src[q - 1];
                wp[q] = wp[q - 1];
                out[q] = out[q - 1];
#pragma GCC unroll 4
                for (v = 0; v < NV; v++) acc[q][v] = acc[q - 1][v];
            }
        }
        for (jj = 0; jj < (transposed ? m : 1); jj++) {
            if (NREG > 0)
#pragma GCC unroll 8
                for (q = 0; q < PP; q++) {
                    if (NREG == 3) {
                        minidl_dws_halves(tb, src[q] + jj * tb->src_len, reg[q]);
                        continue;
                    }
                    reg[q][0] = _mm512_maskz_loadu_ps(tb->regmask[0], src[q] + jj * tb->src_len);
                    if (NREG > 1)
                        reg[q][1] = _mm512_maskz_loadu_ps(tb->regmask[1],
                                                          src[q] + jj * tb->src_len + 16);
                }
            for (k = 0; k < taps; k++) {
                o = jj * tb->src_len + tb->off[k];
#pragma GCC unroll 4
                for (v = 0; v < NV; v++) {
                    mk[v] = tb->mask[v * taps + k];
                    if (NREG > 0)
                        ix[v] = _mm512_loadu_si512((const void*)(tb->idx + (v * taps + k) * 16));
                }
#pragma GCC unroll 8
                for (q = 0; q < PP; q++) {
                    __m512 wk = _mm512_set1_ps(wp[q][jj * taps + k]), t;
#pragma GCC unroll 4
                    for (v = 0; v < NV; v++) {
                        if (NREG == 0)
                            t = _mm512_maskz_loadu_ps(mk[v], src[q] + o + v * 16);
                        else if (NREG == 1)
                            t = _mm512_maskz_permutexvar_ps(mk[v], ix[v], reg[q][0]);
                        else if (NREG == 2 || !tb->pair[k])
                            t = _mm512_maskz_permutex2var_ps(mk[v], reg[q][0], ix[v], reg[q][1]);
                        else
                            t = _mm512_maskz_permutex2var_ps(mk[v], reg[q][2], ix[v], reg[q][3]);
                        acc[q][v] = _mm512_fmadd_ps(t, wk, acc[q][v]);
                    }
                }
            }
        }
#pragma GCC unroll 8
        for (q = 0; q < PP; q++)
#pragma GCC unroll 4
            for (v = 0; v < NV; v++) _mm512_mask_storeu_ps(out[q] + v * 16, om[v], acc[q][v]);
    }
}

#define MINIDL_DWS_BY_NV(CALL, NREG)                                                  \
    if (tb->nvec == 1) CALL##_PLANES(1, NREG);                                        \
    else if (tb->nvec == 2) CALL##_PLANES(2, NREG);                                   \
    else CALL##_PLANES(4, NREG);
#define MINIDL_DWS_BY_MODE(CALL)                                                      \
    if ((tb->nvec == 1 || tb->nvec == 2 || tb->nvec == 4)                             \
        && (tb->mode == MINIDL_DWS_LOADS || tb->nreg <= 2 || tb->split)) {            \
        if (tb->mode == MINIDL_DWS_LOADS) { MINIDL_DWS_BY_NV(CALL, 0) }               \
        else if (tb->nreg == 1) { MINIDL_DWS_BY_NV(CALL, 1) }                         \
        else if (tb->nreg == 2) { MINIDL_DWS_BY_NV(CALL, 2) }                         \
        else { MINIDL_DWS_BY_NV(CALL, 3) }                                            \
    }                                                                                 \
    else if (tb->mode == MINIDL_DWS_LOADS) CALL(MINIDL_DWS_LOADS, 1);                 \
    else if (tb->nreg == 1) CALL(MINIDL_DWS_PERMUTES, 1);                             \
    else if (tb->nreg == 2) CALL(MINIDL_DWS_PERMUTES, 2);                             \
    else CALL(MINIDL_DWS_PERMUTES, 4);

/* Forward, planes p0..p1-1 of x (N*C planes): y[p*m + j] for j < m, bias b or NULL.
   buf: tb->phases only, (p1 - p0) * tb->src_len floats. */
MINIDL_DWS_TARGET static void minidl_dws_forward(const minidl_dws_table* tb, const float* x,
                                                 const float* w, const float* b, float* y,
                                                 Py_ssize_t C, Py_ssize_t m, Py_ssize_t p0,
                                                 Py_ssize_t p1, float* buf)
{
    Py_ssize_t p;
    Py_ssize_t sp0 = 0;
    if (tb->phases) {
        for (p = p0; p < p1; p++)
            minidl_dws_split(tb, x + p * tb->H * tb->W, buf + (p - p0) * tb->src_len);
        x = buf;
        sp0 = p0;
    }
#define MINIDL_DWS_FWD(MODE, NREG) minidl_dws_pass(tb, MODE, NREG, 0, x, w, b, y, C, m, p0, p1, sp0)
#define MINIDL_DWS_FWD_PLANES(NV, NREG)                                              \
    minidl_dws_pass_planes(tb, NV, NREG, 0, x, w, b, y, C, m, p0, p1, sp0)
    MINIDL_DWS_BY_MODE(MINIDL_DWS_FWD)
#undef MINIDL_DWS_FWD
#undef MINIDL_DWS_FWD_PLANES
}

/* Input gradient (tb transposed), planes p0..p1-1 of dx. */
MINIDL_DWS_TARGET static void minidl_dws_input(const minidl_dws_table* tb, const float* dy,
                                               const float* w, float* dx, Py_ssize_t C,
                                               Py_ssize_t m, Py_ssize_t p0, Py_ssize_t p1)
{
#define MINIDL_DWS_IN(MODE, NREG)                                                    \
    minidl_dws_pass(tb, MODE, NREG, 1, dy, w, NULL, dx, C, m, p0, p1, 0)
#define MINIDL_DWS_IN_PLANES(NV, NREG)                                               \
    minidl_dws_pass_planes(tb, NV, NREG, 1, dy, w, NULL, dx, C, m, p0, p1, 0)
    MINIDL_DWS_BY_MODE(MINIDL_DWS_IN)
#undef MINIDL_DWS_IN
#undef MINIDL_DWS_IN_PLANES
}

/* Weight gradient of channel c over samples n0..n1-1 (tb: out = dY plane, src = x
   plane): dw_part[f*taps + k] and, if db_part, db_part[f] for f = c*m + j, j < m; each
   tap sums in 16 float lanes (taps chains in flight; samples in pairs from n0, a fixed
   order), then the lanes in order in double.  buf: tb->phases only, 2 * src_len. */
MINIDL_DWS_INLINE void minidl_dws_weight_as(const minidl_dws_table* tb, const int mode,
                                            const int nreg, const float* x, const float* dy,
                                            Py_ssize_t C, Py_ssize_t m, Py_ssize_t n0,
                                            Py_ssize_t n1, Py_ssize_t c, double* dw_part,
                                            double* db_part, float* buf)
{
    __m512 acc[MINIDL_DWS_MAX_TAPS], accb, g, h0[4], h1[4];
    float lanes[16];
    Py_ssize_t n, j, f, p;
    int v, k, q;
    double s;
    for (j = 0; j < m; j++) {
        f = c * m + j;
        for (k = 0; k < tb->taps; k++) acc[k] = _mm512_setzero_ps();
        accb = _mm512_setzero_ps();
        for (n = n0; n + 1 < n1; n += 2) {  /* two samples at a time: one table read */
            const float *s0, *s1, *g0, *g1;
            __m512 h;
            p = n * C + c;
            s0 = x + p * tb->src_len;
            s1 = x + (p + C) * tb->src_len;
            g0 = dy + (p * m + j) * tb->out_len;
            g1 = dy + ((p + C) * m + j) * tb->out_len;
            if (tb->phases) {
                minidl_dws_split(tb, x + p * tb->H * tb->W, buf);
                minidl_dws_split(tb, x + (p + C) * tb->H * tb->W, buf + tb->src_len);
                s0 = buf;
                s1 = buf + tb->src_len;
            }
            if (nreg == 3) {
                minidl_dws_halves(tb, s0, h0);
                minidl_dws_halves(tb, s1, h1);
            }
            for (v = 0; v < tb->nvec; v++) {
                g = _mm512_maskz_loadu_ps(minidl_dws_out_mask(tb, v), g0 + (Py_ssize_t)v * 16);
                h = _mm512_maskz_loadu_ps(minidl_dws_out_mask(tb, v), g1 + (Py_ssize_t)v * 16);
                accb = _mm512_add_ps(_mm512_add_ps(accb, g), h);
                for (k = 0; k < tb->taps; k++) {
                    __m512 t0 = nreg == 3 ? minidl_dws_tap_split(tb, h0, v, k)
                                          : minidl_dws_tap(tb, mode, nreg, s0, v, k);
                    __m512 t1 = nreg == 3 ? minidl_dws_tap_split(tb, h1, v, k)
                                          : minidl_dws_tap(tb, mode, nreg, s1, v, k);
                    acc[k] = _mm512_fmadd_ps(h, t1, _mm512_fmadd_ps(g, t0, acc[k]));
                }
            }
        }
        if (n < n1) {
            p = n * C + c;
            const float* src = x + p * tb->src_len;
            const float* gp = dy + (p * m + j) * tb->out_len;
            if (tb->phases) {
                minidl_dws_split(tb, x + p * tb->H * tb->W, buf);
                src = buf;
            }
            if (nreg == 3) minidl_dws_halves(tb, src, h0);
            for (v = 0; v < tb->nvec; v++) {
                g = _mm512_maskz_loadu_ps(minidl_dws_out_mask(tb, v), gp + (Py_ssize_t)v * 16);
                accb = _mm512_add_ps(accb, g);
                for (k = 0; k < tb->taps; k++)
                    acc[k] = _mm512_fmadd_ps(g, nreg == 3 ? minidl_dws_tap_split(tb, h0, v, k)
                                                          : minidl_dws_tap(tb, mode, nreg, src, v, k),
                                             acc[k]);
            }
        }
        for (k = 0; k <= tb->taps; k++) {
            _mm512_storeu_ps(lanes, k < tb->taps ? acc[k] : accb);
            s = 0;
            for (q = 0; q < 16; q++) s += lanes[q];
            if (k < tb->taps) dw_part[f * tb->taps + k] = s;
            else if (db_part != NULL) db_part[f] = s;
        }
    }
}

MINIDL_DWS_TARGET static void minidl_dws_weight(const minidl_dws_table* tb, const float* x,
                                                const float* dy, Py_ssize_t C, Py_ssize_t m,
                                                Py_ssize_t n0, Py_ssize_t n1, Py_ssize_t c,
                                                double* dw_part, double* db_part,
                                                float* buf)
{
#define MINIDL_DWS_W(MODE, NREG)                                                     \
    minidl_dws_weight_as(tb, MODE, NREG, x, dy, C, m, n0, n1, c, dw_part, db_part, buf)
#define MINIDL_DWS_W_PLANES(NV, NREG)                                                \
    MINIDL_DWS_W(NREG ? MINIDL_DWS_PERMUTES : MINIDL_DWS_LOADS, NREG ? NREG : 1)
    MINIDL_DWS_BY_MODE(MINIDL_DWS_W)
#undef MINIDL_DWS_W_PLANES
#undef MINIDL_DWS_W
}
#else
#define MINIDL_DWS_AVX512 0
static void minidl_dws_forward(const minidl_dws_table* tb, const float* x, const float* w,
                               const float* b, float* y, Py_ssize_t C, Py_ssize_t m,
                               Py_ssize_t p0, Py_ssize_t p1, float* buf) { (void)tb; }
static void minidl_dws_input(const minidl_dws_table* tb, const float* dy, const float* w,
                             float* dx, Py_ssize_t C, Py_ssize_t m, Py_ssize_t p0,
                             Py_ssize_t p1) { (void)tb; }
static void minidl_dws_weight(const minidl_dws_table* tb, const float* x, const float* dy,
                              Py_ssize_t C, Py_ssize_t m, Py_ssize_t n0, Py_ssize_t n1,
                              Py_ssize_t c, double* dw_part, double* db_part,
                              float* buf) { (void)tb; }
#endif

#endif
