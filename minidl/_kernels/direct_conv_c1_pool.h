/* One input channel: the direct convolution with its 2x2 max pool (and ReLU) fused, on
 * AVX-512 (conv2d_pool_forward in _direct.pyx runs it where minidl_direct_c1_pool_applies:
 * C = 1, at most 25 taps, filter vectors at least 3/4 full).
 *
 * Vectors run across 16 filters: every multiply-add is one input value, broadcast,
 * times a weight vector held in a register, and a window's four conv outputs are
 * pooled in registers.  The general kernel vectorises across output positions instead,
 * which with one channel spends more on moving outputs than on multiply-adds.  The
 * pooled vectors of 16 windows are transposed (avx512_transpose.h) into 16 filters'
 * rows of y, and their window codes with them.
 *
 * The same bits as minidl_direct_forward then max_pool.h's 2x2 kernel (then its ReLU):
 * an output sums its taps in the same order (kw outer, kh inner, multiply-adds from +0)
 * and then adds the bias (0 without one); a pair's right value wins only if strictly
 * larger, the bottom pair only if strictly larger; codes and ReLU as max_pool.h's.
 * A NaN among the conv outputs makes it return nonzero, as the pool does. */
#ifndef MINIDL_DIRECT_C1_POOL_H
#define MINIDL_DIRECT_C1_POOL_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "direct_conv.h"

#define MINIDL_C1_MAX_TAPS 25
/* (kh + 1) * (kw + 1) = taps + kh + kw + 1 <= 2 * 25 + 2 */
#define MINIDL_C1_MAX_PIXELS (2 * MINIDL_C1_MAX_TAPS + 2)

#if MINIDL_DIRECT_COMPILED
#include "avx512_transpose.h"
#define C1_TARGET "avx512f,avx2,fma"

static inline __mmask16 c1_lanes(ptrdiff_t n)
{
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
}

/* Sample n's pooled planes yn (F, Ho/2, Wo/2) and codes cn (or NULL) from its padded
 * plane xs (Hp, Wp); kh, kw and with_codes constants where inlined, so that the tap
 * loops unroll, the weights and a window's input values stay in registers, and no_grad
 * computes no codes.  Without codes and with a finite bias, the bias is added after the
 * pool: rounding x + b is monotonic in x, so the maximum is the same value (only its
 * position may differ, which nothing reads then), and x86's max takes the second
 * operand on ties and signed zeros, as the pool's "strictly larger" selects do. */
static inline __attribute__((always_inline, target(C1_TARGET))) int
c1_conv_pool_k(const minidl_direct_geom* g, const float* xs, const float* wt,
               const float* bias, int relu, float* yn, uint8_t* cn, const int kh, const int kw,
               const int with_codes, const int bias_after)
{
    const int Wp = g->Wp, Qo = g->Wo / 2, F = g->F, fpad = g->fpad;
    const ptrdiff_t P = (ptrdiff_t)(g->Ho / 2) * Qo;
    const __m512 zero = _mm512_setzero_ps();
    const __m512i one = _mm512_set1_epi32(1), two = _mm512_set1_epi32(2);
    const __m512i three = _mm512_set1_epi32(3), four = _mm512_set1_epi32(4);
    __mmask16 nan = 0;
    for (int f0 = 0; f0 < F; f0 += 16) {
        const int nf = F - f0 < 16 ? F - f0 : 16;
        const __mmask16 fl = c1_lanes(nf);
        __m512 w[MINIDL_C1_MAX_TAPS];
        for (int t = 0; t < kh * kw; t++)
            w[t] = _mm512_maskz_loadu_ps(fl, wt + (ptrdiff_t)t * fpad + f0);
        const __m512 b = bias != NULL ? _mm512_maskz_loadu_ps(fl, bias + f0) : zero;
        int pr = 0, pc = 0;   /* the next window's row and column */
        for (ptrdiff_t p0 = 0; p0 < P; p0 += 16) {
            const int m = P - p0 < 16 ? (int)(P - p0) : 16;
            __m512 r[16];
            __m512i c[16];
            for (int j = 0; j < 16; j++) {
                r[j] = zero;
                c[j] = _mm512_setzero_si512();
            }
            for (int j = 0; j < m; j++) {
                const float* s = xs + (ptrdiff_t)2 * pr * Wp + 2 * pc;
                /* the window's (kh+1) x (kw+1) input values, each broadcast once */
                __m512 px[MINIDL_C1_MAX_PIXELS];
                for (int i = 0; i <= kh; i++)
                    for (int t = 0; t <= kw; t++)
                        px[i * (kw + 1) + t] = _mm512_set1_ps(s[(ptrdiff_t)i * Wp + t]);
                __m512 a0 = zero, a1 = zero, a2 = zero, a3 = zero;
                for (int kj = 0; kj < kw; kj++)
                    for (int ki = 0; ki < kh; ki++) {
                        const __m512* q = px + ki * (kw + 1) + kj;
                        const __m512 wv = w[ki * kw + kj];
                        a0 = _mm512_fmadd_ps(q[0], wv, a0);
                        a1 = _mm512_fmadd_ps(q[1], wv, a1);
                        a2 = _mm512_fmadd_ps(q[kw + 1], wv, a2);
                        a3 = _mm512_fmadd_ps(q[kw + 2], wv, a3);
                    }
                if (!bias_after) {
                    a0 = _mm512_add_ps(a0, b);
                    a1 = _mm512_add_ps(a1, b);
                    a2 = _mm512_add_ps(a2, b);
                    a3 = _mm512_add_ps(a3, b);
                }
                nan |= _mm512_cmp_ps_mask(a0, a1, _CMP_UNORD_Q)
                       | _mm512_cmp_ps_mask(a2, a3, _CMP_UNORD_Q);
                __m512 v;
                __m512i code = _mm512_setzero_si512();
                if (with_codes) {
                    const __mmask16 right_top = _mm512_cmp_ps_mask(a1, a0, _CMP_GT_OQ);
                    const __mmask16 right_bot = _mm512_cmp_ps_mask(a3, a2, _CMP_GT_OQ);
                    const __m512 top = _mm512_mask_blend_ps(right_top, a0, a1);
                    const __m512 bot = _mm512_mask_blend_ps(right_bot, a2, a3);
                    const __mmask16 down = _mm512_cmp_ps_mask(bot, top, _CMP_GT_OQ);
                    v = _mm512_mask_blend_ps(down, top, bot);
                    code = _mm512_mask_blend_epi32(
                        down, _mm512_maskz_mov_epi32(right_top, one),
                        _mm512_mask_blend_epi32(right_bot, two, three));
                    if (relu) {   /* zero where not > 0 (no NaN gets here unnoticed), code 4 */
                        const __mmask16 positive = _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ);
                        v = _mm512_maskz_mov_ps(positive, v);
                        code = _mm512_mask_blend_epi32(positive, four, code);
                    }
                } else {
                    /* max(x, y) = x > y ? x : y: the right or bottom one if strictly larger */
                    v = _mm512_max_ps(_mm512_max_ps(a3, a2), _mm512_max_ps(a1, a0));
                    if (bias_after)
                        v = _mm512_add_ps(v, b);
                    if (relu)   /* v > 0 ? v : +0 */
                        v = _mm512_max_ps(v, zero);
                }
                r[j] = v;
                c[j] = code;
                if (++pc == Qo) {
                    pc = 0;
                    pr++;
                }
            }
            minidl_transpose16(r);   /* r[i]: filter f0 + i's m windows */
            const __mmask16 wl = c1_lanes(m);
            for (int i = 0; i < nf; i++)
                _mm512_mask_storeu_ps(yn + (ptrdiff_t)(f0 + i) * P + p0, wl, r[i]);
            if (with_codes) {
                __m512 cf[16];
                for (int j = 0; j < 16; j++)
                    cf[j] = _mm512_castsi512_ps(c[j]);
                minidl_transpose16(cf);
                for (int i = 0; i < nf; i++) {
                    const __m128i bytes = _mm512_cvtepi32_epi8(_mm512_castps_si512(cf[i]));
                    uint8_t* dst = cn + (ptrdiff_t)(f0 + i) * P + p0;
                    if (m == 16) {
                        _mm_storeu_si128((__m128i*)dst, bytes);
                    } else {
                        uint8_t part[16];
                        _mm_storeu_si128((__m128i*)part, bytes);
                        memcpy(dst, part, (size_t)m);
                    }
                }
            }
        }
    }
    return nan != 0;
}

/* mode 0: values and codes; 1: values; 2: values, the bias added after the pool. */
#define C1_MODES(kh, kw)                                                                 \
    if (mode == 0)                                                                       \
        return c1_conv_pool_k(g, xs, wt, bias, relu, yn, cn, kh, kw, 1, 0);              \
    if (mode == 1)                                                                       \
        return c1_conv_pool_k(g, xs, wt, bias, relu, yn, cn, kh, kw, 0, 0);              \
    return c1_conv_pool_k(g, xs, wt, bias, relu, yn, cn, kh, kw, 0, 1);

__attribute__((target(C1_TARGET))) static int
c1_conv_pool_3x3(const minidl_direct_geom* g, const float* xs, const float* wt,
                 const float* bias, int relu, float* yn, uint8_t* cn, int mode)
{
    C1_MODES(3, 3)
}

__attribute__((target(C1_TARGET))) static int
c1_conv_pool_5x5(const minidl_direct_geom* g, const float* xs, const float* wt,
                 const float* bias, int relu, float* yn, uint8_t* cn, int mode)
{
    C1_MODES(5, 5)
}

__attribute__((target(C1_TARGET))) static int
c1_conv_pool_any(const minidl_direct_geom* g, const float* xs, const float* wt,
                 const float* bias, int relu, float* yn, uint8_t* cn, int mode)
{
    C1_MODES(g->kh, g->kw)
}
#undef C1_MODES

/* Whether minidl_direct_c1_pool runs this problem here: AVX-512, one input channel, at
 * most MINIDL_C1_MAX_TAPS taps, and filter vectors at least 3/4 full (6 filters in 16
 * lanes ran slower than the general kernel's position vectors; 12 or 24 ran faster). */
static inline int minidl_direct_c1_pool_applies(const minidl_direct_geom* g)
{
    return g->level == MINIDL_DIRECT_AVX512 && g->C == 1 && g->taps <= MINIDL_C1_MAX_TAPS
           && 4 * g->F >= 3 * (int)minidl_direct_round_up(g->F, 16);
}

/* Samples n0:n1 of x (N, 1, H, W): y (N, F, Ho/2, Wo/2), codes (same, or NULL); wt in
 * the forward's layout (minidl_direct_weight_for_forward), bias (F) or NULL; xs: Hp*Wp
 * floats of scratch.  Nonzero if a NaN reached the pool (y and codes then partial). */
static int minidl_direct_c1_pool(const minidl_direct_geom* g, const float* x, const float* wt,
                                 const float* bias, int relu, float* y, uint8_t* codes,
                                 ptrdiff_t n0, ptrdiff_t n1, float* xs)
{
    const int H = g->H, W = g->W, Wp = g->Wp;
    const ptrdiff_t out = (ptrdiff_t)g->F * (g->Ho / 2) * (g->Wo / 2);
    int nan = 0, mode = codes != NULL ? 0 : 2;
    for (int f = 0; f < g->F && bias != NULL; f++)   /* an inf bias: the exact order */
        if (!(bias[f] - bias[f] == 0.0f))
            mode = codes != NULL ? 0 : 1;
    memset(xs, 0, sizeof(float) * (size_t)g->plane);   /* the zero border, once */
    for (ptrdiff_t n = n0; n < n1 && !nan; n++) {
        const float* xn = x + n * H * W;
        for (int h = 0; h < H; h++)
            memcpy(xs + (ptrdiff_t)(h + g->ph) * Wp + g->pw, xn + (ptrdiff_t)h * W,
                   sizeof(float) * (size_t)W);
        uint8_t* cn = codes != NULL ? codes + n * out : NULL;
        if (g->kh == 3 && g->kw == 3)
            nan = c1_conv_pool_3x3(g, xs, wt, bias, relu, y + n * out, cn, mode);
        else if (g->kh == 5 && g->kw == 5)
            nan = c1_conv_pool_5x5(g, xs, wt, bias, relu, y + n * out, cn, mode);
        else
            nan = c1_conv_pool_any(g, xs, wt, bias, relu, y + n * out, cn, mode);
    }
    return nan;
}
#else
static inline int minidl_direct_c1_pool_applies(const minidl_direct_geom* g)
{
    (void)g;
    return 0;
}

static int minidl_direct_c1_pool(const minidl_direct_geom* g, const float* x, const float* wt,
                                 const float* bias, int relu, float* y, uint8_t* codes,
                                 ptrdiff_t n0, ptrdiff_t n1, float* xs)
{
    (void)g; (void)x; (void)wt; (void)bias; (void)relu; (void)y; (void)codes;
    (void)n0; (void)n1; (void)xs;
    return 1;
}
#endif
#endif
