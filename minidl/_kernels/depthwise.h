/* Depth-wise convolution on small planes (float32, AVX-512 F): one plane's output is a
   few 16-lane vectors, each tap's input vector is gathered at once, so no padded copy,
   no row loop and no junk columns.

   A table (minidl_dws_table, built once per call) says, for every output vector v and
   tap k, which source element each lane reads (or none: padding, a stride's gap, past
   the plane).  Two ways to gather, chosen by minidl_dws_build:
     LOADS     the lane's source index is e + off[k] (e: the lane's flat output index),
               so the tap vector is one masked unaligned load (stride 1 with Wo == W;
               masked lanes never fault);
     PERMUTES  the source plane (<= 64 floats) sits in up to four registers and each tap
               vector is one or two lane permutations of them (any stride).
   Correlation (the forward, the weight gradient): out (Ho, Wo) reads src (H, W) at
   row oh*sh + i*dh - ph, column ow*sw + t*dw - pw.  Transposed (the input gradient):
   out (H, W) reads src (Ho, Wo) at row (h + ph - i*dh) / sh when that divides, so
   dx = Σ_taps w[i, t] * gathered dY with the filter as it is.
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
} minidl_dws_table;

/* The source element output e reads at tap (i, t), or -1. */
static Py_ssize_t minidl_dws_source(int transposed, Py_ssize_t e, Py_ssize_t Wout,
                                    Py_ssize_t Hs, Py_ssize_t Ws, Py_ssize_t i, Py_ssize_t t,
                                    Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph,
                                    Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw)
{
    Py_ssize_t r = e / Wout, q = e % Wout, sr, sq;
    if (!transposed) {
        sr = r * sh + i * dh - ph;
        sq = q * sw + t * dw - pw;
    } else {
        sr = r + ph - i * dh;
        sq = q + pw - t * dw;
        if (sr < 0 || sq < 0 || sr % sh || sq % sw) return -1;
        sr /= sh;
        sq /= sw;
    }
    if (sr < 0 || sr >= Hs || sq < 0 || sq >= Ws) return -1;
    return sr * Ws + sq;
}

static void minidl_dws_free(minidl_dws_table* tb)
{
    free(tb->mask);
    free(tb->hi);
    free(tb->idx);
    tb->mask = tb->hi = NULL;
    tb->idx = NULL;
}

/* Fill tb for out (Hout, Wout) from src (Hs, Ws); tb->mode says which way (NONE: the
   plane is too large or the filter has too many taps).  -1 if out of memory. */
static int minidl_dws_build(minidl_dws_table* tb, int transposed, Py_ssize_t Hs,
                            Py_ssize_t Ws, Py_ssize_t Hout, Py_ssize_t Wout, Py_ssize_t kh,
                            Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph,
                            Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw)
{
    Py_ssize_t v, k, lane, e, s, n;
    int loads = 1, seen;
    memset(tb, 0, sizeof(*tb));
    tb->taps = (int)(kh * kw);
    tb->src_len = Hs * Ws;
    tb->out_len = Hout * Wout;
    if (tb->taps > MINIDL_DWS_MAX_TAPS || tb->out_len > MINIDL_DWS_MAX_OUT
        || tb->out_len < 1 || tb->src_len < 1)
        return 0;
    tb->nvec = (int)((tb->out_len + 15) / 16);
    n = (Py_ssize_t)tb->nvec * tb->taps;
    tb->mask = (unsigned short*)calloc((size_t)n, sizeof(unsigned short));
    tb->hi = (unsigned short*)calloc((size_t)n, sizeof(unsigned short));
    tb->idx = (int*)calloc((size_t)n * 16, sizeof(int));
    if (tb->mask == NULL || tb->hi == NULL || tb->idx == NULL) {
        minidl_dws_free(tb);
        return -1;
    }
    for (k = 0; k < tb->taps; k++) {
        seen = 0;
        for (v = 0; v < tb->nvec; v++)
            for (lane = 0; lane < 16; lane++) {
                e = v * 16 + lane;
                if (e >= tb->out_len) continue;
                s = minidl_dws_source(transposed, e, Wout, Hs, Ws, k / kw, k % kw, sh, sw,
                                      ph, pw, dh, dw);
                if (s < 0) continue;
                tb->mask[v * tb->taps + k] |= (unsigned short)(1u << lane);
                if (s >= 32) tb->hi[v * tb->taps + k] |= (unsigned short)(1u << lane);
                tb->idx[(v * tb->taps + k) * 16 + lane] = (int)(s & 31);
                if (!seen) tb->off[k] = s - e;
                else if (s - e != tb->off[k]) loads = 0;
                seen = 1;
            }
    }
    if (loads) {
        tb->mode = MINIDL_DWS_LOADS;
    } else if (tb->src_len <= MINIDL_DWS_MAX_SRC) {
        tb->mode = MINIDL_DWS_PERMUTES;
        tb->nreg = (int)((tb->src_len + 15) / 16);
    }
    return 0;
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define MINIDL_DWS_AVX512 1
#define MINIDL_DWS_TARGET __attribute__((target("avx512f")))
#define MINIDL_DWS_INLINE __attribute__((target("avx512f"), always_inline)) static inline

/* The source plane in registers (PERMUTES), zeros past its end. */
MINIDL_DWS_INLINE void minidl_dws_regs(const minidl_dws_table* tb, const float* src,
                                       __m512* r)
{
    int q;
    for (q = 0; q < tb->nreg; q++) {
        Py_ssize_t rest = tb->src_len - 16 * q;
        __mmask16 m = rest >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << rest) - 1);
        r[q] = _mm512_maskz_loadu_ps(m, src + 16 * q);
    }
}

/* Tap k's input vector for output vector v (zeros where nothing is read). */
MINIDL_DWS_INLINE __m512 minidl_dws_tap(const minidl_dws_table* tb, const float* src,
                                        const __m512* r, int v, int k)
{
    int e = v * tb->taps + k;
    __mmask16 m = tb->mask[e], h;
    __m512i idx;
    if (tb->mode == MINIDL_DWS_LOADS)
        return _mm512_maskz_loadu_ps(m, src + (Py_ssize_t)v * 16 + tb->off[k]);
    idx = _mm512_loadu_si512((const void*)(tb->idx + (Py_ssize_t)e * 16));
    if (tb->nreg == 1) return _mm512_maskz_permutexvar_ps(m, idx, r[0]);
    if (tb->nreg == 2) return _mm512_maskz_permutex2var_ps(m, r[0], idx, r[1]);
    h = tb->hi[e];
    return _mm512_mask_mov_ps(_mm512_maskz_permutex2var_ps(m & ~h, r[0], idx, r[1]), m & h,
                              _mm512_permutex2var_ps(r[2], idx, r[3]));
}

MINIDL_DWS_INLINE __mmask16 minidl_dws_out_mask(const minidl_dws_table* tb, int v)
{
    Py_ssize_t rest = tb->out_len - (Py_ssize_t)v * 16;
    return rest >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << rest) - 1);
}

/* Forward, planes p0..p1-1 of x (N*C planes of src_len): y[p*m + j] for j < m, filter
   f = (p % C)*m + j, bias b (or NULL). */
MINIDL_DWS_TARGET static void minidl_dws_forward(const minidl_dws_table* tb, const float* x,
                                                 const float* w, const float* b, float* y,
                                                 Py_ssize_t C, Py_ssize_t m, Py_ssize_t p0,
                                                 Py_ssize_t p1)
{
    __m512 wv[MINIDL_DWS_MAX_TAPS], r[4], acc;
    Py_ssize_t p, j, f;
    int v, k;
    for (p = p0; p < p1; p++) {
        const float* src = x + p * tb->src_len;
        if (tb->mode == MINIDL_DWS_PERMUTES) minidl_dws_regs(tb, src, r);
        for (j = 0; j < m; j++) {
            float* out = y + (p * m + j) * tb->out_len;
            f = (p % C) * m + j;
            for (k = 0; k < tb->taps; k++) wv[k] = _mm512_set1_ps(w[f * tb->taps + k]);
            for (v = 0; v < tb->nvec; v++) {
                acc = _mm512_set1_ps(b != NULL ? b[f] : 0.0f);
                for (k = 0; k < tb->taps; k++)
                    acc = _mm512_fmadd_ps(minidl_dws_tap(tb, src, r, v, k), wv[k], acc);
                _mm512_mask_storeu_ps(out + (Py_ssize_t)v * 16, minidl_dws_out_mask(tb, v), acc);
            }
        }
    }
}

/* Input gradient (tb transposed), planes p0..p1-1 of dx: dx[p] = Σ_j, in order, the
   transposed correlation of dY[p*m + j] with filter (p % C)*m + j. */
MINIDL_DWS_TARGET static void minidl_dws_input(const minidl_dws_table* tb, const float* dy,
                                               const float* w, float* dx, Py_ssize_t C,
                                               Py_ssize_t m, Py_ssize_t p0, Py_ssize_t p1)
{
    __m512 wv[MINIDL_DWS_MAX_TAPS], r[4], acc;
    Py_ssize_t p, j, f;
    int v, k;
    for (p = p0; p < p1; p++) {
        float* out = dx + p * tb->out_len;
        for (j = 0; j < m; j++) {
            const float* src = dy + (p * m + j) * tb->src_len;
            if (tb->mode == MINIDL_DWS_PERMUTES) minidl_dws_regs(tb, src, r);
            f = (p % C) * m + j;
            for (k = 0; k < tb->taps; k++) wv[k] = _mm512_set1_ps(w[f * tb->taps + k]);
            for (v = 0; v < tb->nvec; v++) {
                __mmask16 om = minidl_dws_out_mask(tb, v);
                acc = j == 0 ? _mm512_setzero_ps()
                             : _mm512_maskz_loadu_ps(om, out + (Py_ssize_t)v * 16);
                for (k = 0; k < tb->taps; k++)
                    acc = _mm512_fmadd_ps(minidl_dws_tap(tb, src, r, v, k), wv[k], acc);
                _mm512_mask_storeu_ps(out + (Py_ssize_t)v * 16, om, acc);
            }
        }
    }
}

/* Weight gradient of channel c over samples n0..n1-1 (tb: out = dY plane, src = x
   plane): dw_part[f*taps + k] and, if db_part, db_part[f] for f = c*m + j, j < m; each
   tap sums in 16 float lanes, then the lanes in order in double. */
MINIDL_DWS_TARGET static void minidl_dws_weight(const minidl_dws_table* tb, const float* x,
                                                const float* dy, Py_ssize_t C, Py_ssize_t m,
                                                Py_ssize_t n0, Py_ssize_t n1, Py_ssize_t c,
                                                double* dw_part, double* db_part)
{
    __m512 acc[MINIDL_DWS_MAX_TAPS], accb, r[4], g;
    float lanes[16];
    Py_ssize_t n, j, f, p;
    int v, k, q;
    double s;
    for (j = 0; j < m; j++) {
        f = c * m + j;
        for (k = 0; k < tb->taps; k++) acc[k] = _mm512_setzero_ps();
        accb = _mm512_setzero_ps();
        for (n = n0; n < n1; n++) {
            p = n * C + c;
            const float* src = x + p * tb->src_len;
            const float* gp = dy + (p * m + j) * tb->out_len;
            if (tb->mode == MINIDL_DWS_PERMUTES) minidl_dws_regs(tb, src, r);
            for (v = 0; v < tb->nvec; v++) {
                g = _mm512_maskz_loadu_ps(minidl_dws_out_mask(tb, v), gp + (Py_ssize_t)v * 16);
                accb = _mm512_add_ps(accb, g);
                for (k = 0; k < tb->taps; k++)
                    acc[k] = _mm512_fmadd_ps(g, minidl_dws_tap(tb, src, r, v, k), acc[k]);
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
#else
#define MINIDL_DWS_AVX512 0
static void minidl_dws_forward(const minidl_dws_table* tb, const float* x, const float* w,
                               const float* b, float* y, Py_ssize_t C, Py_ssize_t m,
                               Py_ssize_t p0, Py_ssize_t p1) { (void)tb; }
static void minidl_dws_input(const minidl_dws_table* tb, const float* dy, const float* w,
                             float* dx, Py_ssize_t C, Py_ssize_t m, Py_ssize_t p0,
                             Py_ssize_t p1) { (void)tb; }
static void minidl_dws_weight(const minidl_dws_table* tb, const float* x, const float* dy,
                              Py_ssize_t C, Py_ssize_t m, Py_ssize_t n0, Py_ssize_t n1,
                              Py_ssize_t c, double* dw_part, double* db_part) { (void)tb; }
#endif

#endif
