/* AVX-512 paths of the float32 2x2 max pool with window codes (max_pool.h), 16
   outputs a step, for output rows of wo = 1, 2, 4 or 8 (16 / wo output rows stacked in
   64 consecutive inputs) or wo > 8 (up to 16 outputs of one row from 32 inputs on top
   and 32 below, masked at the row's end).  Included by max_pool.h after the portable
   functions, which take wo = 3, 5, 6, 7 (where most lanes would idle) and the rows left
   over.  Same results, bit for bit: the same comparisons pick the same elements. */
#ifndef MINIDL_MAX_POOL_2X2_AVX512_H
#define MINIDL_MAX_POOL_2X2_AVX512_H
#include "cpu_level.h"

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#include <immintrin.h>
#include "vector_helpers.h"
#define MP_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))
#define MP_HAVE_AVX512 1
#else
#define MP_HAVE_AVX512 0
#endif

/* 1 when the AVX-512 paths run; set by mp_select_level (module import; tests lower it) */
static int mp_level = 0;

/* Permutation indices for wo = 1, 2, 4, 8 (index log2 wo), filled once by
   mp_select_level.  Lane f (0..31) of a pair of vectors holding 64 stacked inputs:
   output row f / (4 wo); then top (s = 0) or bottom row (s = 1); then column pair k and
   left (t = 0) or right (t = 1).  The forward gathers, from the first 32 inputs, the 8
   outputs' left elements of the top row in lanes 0..7 and of the bottom row in lanes
   8..15 (mp_fwd_right: the right ones); the backward (mp_bwd) puts them back. */
static int32_t mp_fwd_left[4][16], mp_fwd_right[4][16], mp_bwd[4][32];

static inline int mp_log2_width(Py_ssize_t wo)
{
    return wo == 1 ? 0 : wo == 2 ? 1 : wo == 4 ? 2 : 3;
}

static void mp_fill_indices(void)
{
    int i, lane, f;
    for (i = 0; i < 4; i++) {
        int wo = 1 << i;
        for (lane = 0; lane < 16; lane++) {
            int o = lane & 7, s = lane >> 3;
            mp_fwd_left[i][lane] = (o / wo) * 4 * wo + s * 2 * wo + 2 * (o % wo);
            mp_fwd_right[i][lane] = mp_fwd_left[i][lane] + 1;
        }
        for (f = 0; f < 32; f++) {
            int row = f / (4 * wo), rem = f % (4 * wo);
            int s = rem / (2 * wo), k = (rem % (2 * wo)) / 2, t = f & 1;
            mp_bwd[i][f] = t * 16 + s * 8 + row * wo + k;
        }
    }
}

/* The level the 2x2 max pool runs at for the kernels' common level (cpu_level in
   _helpers.pxd): AVX-512 when that is MINIDL_CPU_AVX512 and the CPU has BW and VL too,
   else the portable C. */
static int mp_select_level(int level)
{
    mp_level = (MP_HAVE_AVX512 && level >= MINIDL_CPU_AVX512
                && minidl_cpu_has_avx512bw_vl()) ? 1 : 0;
    if (mp_level)
        mp_fill_indices();
    return mp_level;
}

/* wo = 1, 2, 4, 8: 16 / wo output rows a step; other widths above 8: one row's outputs;
   3, 5, 6, 7: the portable C (most lanes would idle) */
static inline int mp_stacks_rows(Py_ssize_t wo)
{
    return wo == 1 || wo == 2 || wo == 4 || wo == 8;
}

static inline int mp_runs(Py_ssize_t wo)
{
    return mp_level && (mp_stacks_rows(wo) || wo > 8);
}

#if MP_HAVE_AVX512

/* The lanes of a step of n outputs of one row (n > 16 counts as 16): ``out`` for the
   outputs, ``in_lo`` and ``in_hi`` for the 2 n inputs of each input row. */
MP_AVX512 static inline void mp_masks(Py_ssize_t n, __mmask16* out, __mmask16* in_lo,
                                      __mmask16* in_hi)
{
    if (n > 16)
        n = 16;
    *out = (__mmask16)((1u << n) - 1);
    *in_lo = n >= 8 ? (__mmask16)0xFFFF : (__mmask16)((1u << (2 * n)) - 1);
    *in_hi = n > 8 ? (__mmask16)((1u << (2 * n - 16)) - 1) : (__mmask16)0;
}

/* a, b: top row's left and right elements; c, d: the bottom row's.  Returns the NaN
   mask; writes the maxima and codes of the lanes in ``out``. */
MP_AVX512 static inline __mmask16 mp_codes16(__m512 a, __m512 b, __m512 c, __m512 d,
                                            float* y, unsigned char* code, __mmask16 out)
{
    __mmask16 right_top = _mm512_cmp_ps_mask(b, a, _CMP_GT_OQ);
    __mmask16 right_bot = _mm512_cmp_ps_mask(d, c, _CMP_GT_OQ);
    __m512 top = _mm512_mask_blend_ps(right_top, a, b);
    __m512 bot = _mm512_mask_blend_ps(right_bot, c, d);
    __mmask16 bottom = _mm512_cmp_ps_mask(bot, top, _CMP_GT_OQ);
    __mmask16 right = (__mmask16)((bottom & right_bot) | (~bottom & right_top));
    __m512i k = _mm512_maskz_mov_epi32(right, _mm512_set1_epi32(1));
    k = _mm512_mask_add_epi32(k, bottom, k, _mm512_set1_epi32(2));
    _mm512_mask_storeu_ps(y, out, _mm512_mask_blend_ps(bottom, top, bot));
    _mm512_mask_cvtepi32_storeu_epi8(code, out, k);
    return (__mmask16)(_mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q)
                       | _mm512_cmp_ps_mask(c, d, _CMP_UNORD_Q));
}

/* mp_max_2x2_portable_f's contract (nonzero if a NaN was seen). */
MP_AVX512 static int mp_max_2x2_avx512(const float* restrict x, float* restrict y,
                                       unsigned char* restrict code, Py_ssize_t rows,
                                       Py_ssize_t wo, float* restrict hm,
                                       int32_t* restrict hs)
{
    __mmask16 nan = 0;
    if (!mp_stacks_rows(wo)) {
        const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22,
                                               24, 26, 28, 30);
        const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
        Py_ssize_t r, k;
        for (r = 0; r < rows; r++, x += 4 * wo, y += wo, code += wo)
            for (k = 0; k < wo; k += 16) {
                __mmask16 out, in_lo, in_hi;
                __m512 t0, t1, b0, b1;
                mp_masks(wo - k, &out, &in_lo, &in_hi);
                t0 = _mm512_maskz_loadu_ps(in_lo, x + 2 * k);
                t1 = _mm512_maskz_loadu_ps(in_hi, x + 2 * k + 16);
                b0 = _mm512_maskz_loadu_ps(in_lo, x + 2 * wo + 2 * k);
                b1 = _mm512_maskz_loadu_ps(in_hi, x + 2 * wo + 2 * k + 16);
                nan |= mp_codes16(_mm512_permutex2var_ps(t0, even, t1),
                                  _mm512_permutex2var_ps(t0, odd, t1),
                                  _mm512_permutex2var_ps(b0, even, b1),
                                  _mm512_permutex2var_ps(b0, odd, b1), y + k, code + k, out);
            }
        return nan != 0;
    }
    {
        const int w = mp_log2_width(wo);
        const __m512i left = _mm512_loadu_si512(mp_fwd_left[w]);
        const __m512i right = _mm512_loadu_si512(mp_fwd_right[w]);
        Py_ssize_t blocks = rows * wo / 16, i, done;
        for (i = 0; i < blocks; i++, x += 64, y += 16, code += 16) {
            __m512 z0 = _mm512_loadu_ps(x), z1 = _mm512_loadu_ps(x + 16);
            __m512 z2 = _mm512_loadu_ps(x + 32), z3 = _mm512_loadu_ps(x + 48);
            __m512 l_lo = _mm512_permutex2var_ps(z0, left, z1);
            __m512 l_hi = _mm512_permutex2var_ps(z2, left, z3);
            __m512 r_lo = _mm512_permutex2var_ps(z0, right, z1);
            __m512 r_hi = _mm512_permutex2var_ps(z2, right, z3);
            nan |= mp_codes16(_mm512_shuffle_f32x4(l_lo, l_hi, 0x44),
                              _mm512_shuffle_f32x4(r_lo, r_hi, 0x44),
                              _mm512_shuffle_f32x4(l_lo, l_hi, 0xEE),
                              _mm512_shuffle_f32x4(r_lo, r_hi, 0xEE), y, code, 0xFFFF);
        }
        if (nan)
            return 1;
        done = blocks * 16 / wo;
        return rows > done ? mp_max_2x2_portable_f(x, y, code, rows - done, wo, hm, hs, 1) : 0;
    }
}

/* The gradients' values at code 0..3 (0 + g there, +0 elsewhere), of the first n <= 16
   outputs (the other lanes read as code 4: +0 everywhere). */
MP_AVX512 static inline void mp_spread16(const float* g, const unsigned char* code,
                                        Py_ssize_t n, __m512* v0, __m512* v1, __m512* v2,
                                        __m512* v3)
{
    __mmask16 m = minidl_lanes16(n);
    __m512 v = _mm512_add_ps(_mm512_setzero_ps(), _mm512_maskz_loadu_ps(m, g));
    __m512i c = _mm512_cvtepu8_epi32(_mm_mask_loadu_epi8(_mm_set1_epi8(4), m, code));
    *v0 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(c, _mm512_set1_epi32(0)), v);
    *v1 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(c, _mm512_set1_epi32(1)), v);
    *v2 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(c, _mm512_set1_epi32(2)), v);
    *v3 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(c, _mm512_set1_epi32(3)), v);
}

/* mp_max_2x2_backward_portable_f's contract. */
MP_AVX512 static void mp_max_2x2_backward_avx512(const float* restrict g,
                                                 const unsigned char* restrict code,
                                                 float* restrict dx, Py_ssize_t rows,
                                                 Py_ssize_t wo)
{
    __m512 v0, v1, v2, v3;
    if (!mp_stacks_rows(wo)) {
        const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22,
                                             7, 23);
        const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
        Py_ssize_t r, k;
        for (r = 0; r < rows; r++, g += wo, code += wo, dx += 4 * wo)
            for (k = 0; k < wo; k += 16) {
                __mmask16 out, in_lo, in_hi;
                float* top = dx + 2 * k;
                float* bot = dx + 2 * wo + 2 * k;
                mp_masks(wo - k, &out, &in_lo, &in_hi);
                mp_spread16(g + k, code + k, wo - k, &v0, &v1, &v2, &v3);
                _mm512_mask_storeu_ps(top, in_lo, _mm512_permutex2var_ps(v0, lo, v1));
                _mm512_mask_storeu_ps(top + 16, in_hi, _mm512_permutex2var_ps(v0, hi, v1));
                _mm512_mask_storeu_ps(bot, in_lo, _mm512_permutex2var_ps(v2, lo, v3));
                _mm512_mask_storeu_ps(bot + 16, in_hi, _mm512_permutex2var_ps(v2, hi, v3));
            }
        return;
    }
    {
        const int w = mp_log2_width(wo);
        const __m512i lo = _mm512_loadu_si512(mp_bwd[w]);
        const __m512i hi = _mm512_loadu_si512(mp_bwd[w] + 16);
        Py_ssize_t blocks = rows * wo / 16, i, done;
        for (i = 0; i < blocks; i++, g += 16, code += 16, dx += 64) {
            __m512 left_lo, right_lo, left_hi, right_hi;
            mp_spread16(g, code, 16, &v0, &v1, &v2, &v3);
            /* [top left | bottom left] and [top right | bottom right] of outputs 0..7,
               then of outputs 8..15 */
            left_lo = _mm512_shuffle_f32x4(v0, v2, 0x44);
            right_lo = _mm512_shuffle_f32x4(v1, v3, 0x44);
            left_hi = _mm512_shuffle_f32x4(v0, v2, 0xEE);
            right_hi = _mm512_shuffle_f32x4(v1, v3, 0xEE);
            _mm512_storeu_ps(dx, _mm512_permutex2var_ps(left_lo, lo, right_lo));
            _mm512_storeu_ps(dx + 16, _mm512_permutex2var_ps(left_lo, hi, right_lo));
            _mm512_storeu_ps(dx + 32, _mm512_permutex2var_ps(left_hi, lo, right_hi));
            _mm512_storeu_ps(dx + 48, _mm512_permutex2var_ps(left_hi, hi, right_hi));
        }
        done = blocks * 16 / wo;
        if (rows > done)
            mp_max_2x2_backward_portable_f(g, code, dx, rows - done, wo);
    }
}

/* minidl_relu_codes_f's contract: zeros stored, masked, where y is neither > 0 nor NaN,
   and code 4 where y is not > 0. */
MP_AVX512 static void mp_relu_codes_avx512(float* restrict y, unsigned char* restrict code,
                                           Py_ssize_t n)
{
    const __m512 zero = _mm512_setzero_ps();
    const __m128i four = _mm_set1_epi8(4);
    Py_ssize_t k;
    for (k = 0; k < n; k += 16) {
        __mmask16 m = minidl_lanes16(n - k);
        __m512 v = _mm512_maskz_loadu_ps(m, y + k);
        __mmask16 positive = _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ);
        __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        _mm512_mask_storeu_ps(y + k, (__mmask16)(~(positive | nan) & m), zero);
        _mm_mask_storeu_epi8(code + k, (__mmask16)(~positive & m), four);
    }
}

#endif

#endif
