/* One input channel: the direct convolution with its 2x2 max pool (and ReLU) fused, on
 * AVX-512 or AVX2 + FMA (conv2d_pool_forward in _direct.pyx runs it where
 * minidl_direct_c1_pool_applies: C = 1, at most 25 taps, filter vectors at least 3/4 full).
 *
 * Vectors run across the filters (16 or 8 a vector): every multiply-add is one input
 * value, broadcast, times a weight vector held in a register, and a window's four conv
 * outputs are pooled in registers.  The general kernel vectorises across output
 * positions instead, which with one channel spends more on moving outputs than on
 * multiply-adds.  The pooled vectors of a vector's worth of windows are transposed into
 * the filters' rows of y, and their window codes with them.  The body is
 * direct_conv_c1_pool_impl.h, once per level, over the C1_* operations defined here.
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
#include <immintrin.h>
#include "vector_helpers.h"

/* ---- AVX-512: 16 filters a vector, masks in k registers ---- */
/* the first n of v's 16 codes (0..4 in int32 lanes) as bytes at dst */
__attribute__((target("avx512f"))) static inline void
c1_store_codes16(uint8_t* dst, int n, __m512 v)
{
    const __m128i bytes = _mm512_cvtepi32_epi8(_mm512_castps_si512(v));
    if (n == 16) {
        _mm_storeu_si128((__m128i*)dst, bytes);
    } else {
        uint8_t part[16];
        _mm_storeu_si128((__m128i*)part, bytes);
        memcpy(dst, part, (size_t)n);
    }
}

#define C1_VW 16
#define C1_NAME(n) n##_avx512
#define C1_TARGET "avx512f,avx2,fma"
#define C1V __m512
#define C1I __m512i
#define C1M __mmask16
#define C1_LANES(n) minidl_lanes16(n)
#define C1_LOAD(m, p) _mm512_maskz_loadu_ps(m, p)
#define C1_SET1(x) _mm512_set1_ps(x)
#define C1_ZERO() _mm512_setzero_ps()
#define C1_IZERO() _mm512_setzero_si512()
#define C1_ISET1(x) _mm512_set1_epi32(x)
#define C1_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define C1_ADD(a, b) _mm512_add_ps(a, b)
#define C1_MAX(a, b) _mm512_max_ps(a, b)
#define C1_GT(a, b) _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ)
#define C1_UNORD(a, b) _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q)
#define C1_MOR(a, b) ((__mmask16)((a) | (b)))
#define C1_MNONE() ((__mmask16)0)
#define C1_MANY(m) ((m) != 0)
#define C1_BLEND(m, a, b) _mm512_mask_blend_ps(m, a, b)
#define C1_IBLEND(m, a, b) _mm512_mask_blend_epi32(m, a, b)
#define C1_MASKZ(m, v) _mm512_maskz_mov_ps(m, v)
#define C1_IMASKZ(m, v) _mm512_maskz_mov_epi32(m, v)
#define C1_TRANSPOSE(r) minidl_transpose16(r)
#define C1_ITOF(v) _mm512_castsi512_ps(v)
#define C1_STORE(p, n, v) _mm512_mask_storeu_ps(p, minidl_lanes16(n), v)
#define C1_STORE_CODES(p, n, v) c1_store_codes16(p, n, v)
#include "direct_conv_c1_pool_impl.h"

/* ---- AVX2: 8 filters a vector, masks as all-ones / zero lanes ---- */
__attribute__((target("avx2"))) static inline void
c1_store_codes8(uint8_t* dst, int n, __m256 v)
{
    int32_t part[8];
    _mm256_storeu_si256((__m256i*)part, _mm256_castps_si256(v));
    for (int j = 0; j < n; j++)
        dst[j] = (uint8_t)part[j];
}

#define C1_VW 8
#define C1_NAME(n) n##_avx2
#define C1_TARGET "avx2,fma"
#define C1V __m256
#define C1I __m256i
#define C1M __m256
#define C1_LANES(n) minidl_lanes8(n)
#define C1_LOAD(m, p) _mm256_maskload_ps(p, _mm256_castps_si256(m))
#define C1_SET1(x) _mm256_set1_ps(x)
#define C1_ZERO() _mm256_setzero_ps()
#define C1_IZERO() _mm256_setzero_si256()
#define C1_ISET1(x) _mm256_set1_epi32(x)
#define C1_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define C1_ADD(a, b) _mm256_add_ps(a, b)
#define C1_MAX(a, b) _mm256_max_ps(a, b)
#define C1_GT(a, b) _mm256_cmp_ps(a, b, _CMP_GT_OQ)
#define C1_UNORD(a, b) _mm256_cmp_ps(a, b, _CMP_UNORD_Q)
#define C1_MOR(a, b) _mm256_or_ps(a, b)
#define C1_MNONE() _mm256_setzero_ps()
#define C1_MANY(m) (_mm256_movemask_ps(m) != 0)
#define C1_BLEND(m, a, b) _mm256_blendv_ps(a, b, m)
#define C1_IBLEND(m, a, b)                                                               \
    _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(a), _mm256_castsi256_ps(b), m))
#define C1_MASKZ(m, v) _mm256_and_ps(m, v)
#define C1_IMASKZ(m, v) _mm256_and_si256(_mm256_castps_si256(m), v)
#define C1_TRANSPOSE(r) minidl_transpose8(r)
#define C1_ITOF(v) _mm256_castsi256_ps(v)
#define C1_STORE(p, n, v) minidl_store8(p, n, v)
#define C1_STORE_CODES(p, n, v) c1_store_codes8(p, n, v)
#include "direct_conv_c1_pool_impl.h"

/* Filters a vector at this geometry's level (0: no one-channel kernel there). */
static inline int c1_vector_filters(const minidl_direct_geom* g)
{
    return g->level == MINIDL_DIRECT_AVX512 ? 16 : g->level == MINIDL_DIRECT_AVX2 ? 8 : 0;
}

/* Whether minidl_direct_c1_pool runs this problem here: one input channel, at most
 * MINIDL_C1_MAX_TAPS taps, and filter vectors at least 3/4 full (on AVX-512, 6 filters
 * in 16 lanes ran slower than the general kernel's position vectors; 12 or 24 faster). */
static inline int minidl_direct_c1_pool_applies(const minidl_direct_geom* g)
{
    const int vf = c1_vector_filters(g);
    return vf > 0 && g->C == 1 && g->taps <= MINIDL_C1_MAX_TAPS
           && 4 * g->F >= 3 * (int)minidl_direct_round_up(g->F, vf);
}

/* Samples n0:n1 of x (N, 1, H, W): y (N, F, Ho/2, Wo/2), codes (same, or NULL); wt in
 * the forward's layout (minidl_direct_weight_for_forward), bias (F) or NULL; xs: Hp*Wp
 * floats of scratch.  Nonzero if a NaN reached the pool (y and codes then partial). */
static int minidl_direct_c1_pool(const minidl_direct_geom* g, const float* x, const float* wt,
                                 const float* bias, int relu, float* y, uint8_t* codes,
                                 ptrdiff_t n0, ptrdiff_t n1, float* xs)
{
    /* mode (C1_MODES): values and codes, values, or values with the bias after the
     * pool; an infinite bias keeps the exact order */
    int mode = codes != NULL ? 0 : 2;
    for (int f = 0; f < g->F && bias != NULL; f++)
        if (!(bias[f] - bias[f] == 0.0f))
            mode = codes != NULL ? 0 : 1;
    memset(xs, 0, sizeof(float) * (size_t)g->plane);   /* the zero border, once */
    if (g->level == MINIDL_DIRECT_AVX512)
        return c1_pool_samples_avx512(g, x, wt, bias, relu, y, codes, n0, n1, xs, mode);
    return c1_pool_samples_avx2(g, x, wt, bias, relu, y, codes, n0, n1, xs, mode);
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
