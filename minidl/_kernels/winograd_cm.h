/* Channel-major F(4x4, 3x3) on 4x4 planes with padding 1 (each plane one tile, its 6x6
 * patch the plane inside a zero border): the transforms run across 16 (AVX-512) or 8
 * (AVX2 + FMA) channels or filters per vector instead of across tiles.  A sample's
 * planes of 16 values are contiguous, so a register transpose (vector_helpers.h) turns a
 * vector's worth of them into one vector per position, with no gather.  The transformed
 * rows are then (tile, channel): V[ξ] (m, C) and M[ξ] (m, F), row stride C or F, and the
 * GEMMs read both operands row-major.  Lanes past C or F are masked: planes past the end
 * load as zeros and are not stored.
 *
 * Entry (tile t, position ξ, channel or filter c) of V or M is at ξ*s + t*st + c:
 * "ξ-major" (st = C or F, s past a whole block of tiles) or "tile-major" (s = C or F,
 * st = 36 s: a tile's 36 vectors stored or loaded in one run, which the hardware
 * prefetches; 36 runs a ξ apart are more streams than it follows).
 *
 * The body is winograd_cm_impl.h, once per level, over the CM_* operations defined
 * here; both levels add and multiply in the same order, so they differ only where FMA
 * contraction rounds differently.  float32 only; wg_channel_major() says whether this
 * CPU runs it (_winograd.pyx's plan checks). */
#ifndef MINIDL_WINOGRAD_CM_H
#define MINIDL_WINOGRAD_CM_H
#include "winograd_arith.h"

#ifdef WG_X86
/* ---- AVX-512: 16 channels a vector, one plane a vector ---- */

/* r[j] = the 16 values at src + j*16 for j < n, zero for the others. */
__attribute__((target("avx512f"))) static inline void
wg_load_planes16(const float* src, int n, __m512 r[16])
{
    for (int j = 0; j < 16; j++)
        r[j] = j < n ? _mm512_loadu_ps(src + j * 16) : _mm512_setzero_ps();
}

/* r[j] = the 4x4 plane the 2x2 max pool's backward makes of the pooled values g + 4j and
 * their window codes codes + 4j (0 + g at the coded position, +0 elsewhere; code 4:
 * none), for j < n; zero for the others. */
__attribute__((target("avx512f"))) static inline void
wg_spread_planes16(const float* g, const unsigned char* codes, int n, __m512 r[16])
{
    /* lane 4i + j of a plane: window 2(i/2) + j/2, position 2(i%2) + j%2 in it */
    const __m512i win = _mm512_setr_epi32(0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3);
    const __m512i pos = _mm512_setr_epi32(0, 1, 0, 1, 2, 3, 2, 3, 0, 1, 0, 1, 2, 3, 2, 3);
    const __m512 z = _mm512_setzero_ps();
    for (int j = 0; j < 16; j++) {
        if (j < n) {
            int32_t four;
            memcpy(&four, codes + 4 * j, 4);
            const __m512 gv = _mm512_permutexvar_ps(
                win, _mm512_castps128_ps512(_mm_loadu_ps(g + 4 * j)));
            const __m512i cv = _mm512_permutexvar_epi32(
                win, _mm512_cvtepu8_epi32(_mm_cvtsi32_si128(four)));
            r[j] = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(cv, pos), _mm512_add_ps(z, gv));
        } else {
            r[j] = z;
        }
    }
}

/* r[4i + j] = entry (i, j) of the 4x4 planes p0 .. p0 + n - 1 (16 lanes, zero past n):
 * planes of src (P, 4, 4), or with codes the ones wg_spread_planes16 makes of src
 * (P, 2, 2) and codes (P, 2, 2). */
__attribute__((target("avx512f"))) static inline void
wg_read_planes16(const float* src, const unsigned char* codes, ptrdiff_t p0, int n,
                 __m512 r[16])
{
    if (codes)
        wg_spread_planes16(src + p0 * 4, codes + p0 * 4, n, r);
    else
        wg_load_planes16(src + p0 * 16, n, r);
    minidl_transpose16(r);
}

/* The 4x4 planes dst + j*16, j < n, from o[4i + j'] = entry (i, j') across planes. */
__attribute__((target("avx512f"))) static inline void
wg_write_planes16(float* dst, int n, __m512 o[16])
{
    minidl_transpose16(o);
    for (int j = 0; j < n; j++)
        _mm512_storeu_ps(dst + j * 16, o[j]);
}

/* dst + j*4, j < n: plane j's four windows from r[k] = window k across planes; codes
 * (int32 lanes) as bytes where ``bytes``. */
__attribute__((target("avx512f"))) static inline void
wg_write_windows16(void* dst, int n, const __m512 r[4], int bytes)
{
    __m512 t[16];
    for (int k = 0; k < 16; k++)
        t[k] = k < 4 ? r[k] : _mm512_setzero_ps();
    minidl_transpose16(t);
    for (int j = 0; j < n; j++) {
        if (bytes)
            _mm512_mask_cvtepi32_storeu_epi8((unsigned char*)dst + j * 4, 0xF,
                                             _mm512_castps_si512(t[j]));
        else
            _mm512_mask_storeu_ps((float*)dst + j * 4, 0xF, t[j]);
    }
}

#define CM_VW 16
#define CM_NAME(n) n##_avx512
#define CM_TARGET "avx512f,avx2,fma"
#define CMV __m512
#define CMI __m512i
#define CMM __mmask16
#define CM_ZERO() _mm512_setzero_ps()
#define CM_IZERO() _mm512_setzero_si512()
#define CM_ISET1(x) _mm512_set1_epi32(x)
#define CM_LOAD(n, p) _mm512_maskz_loadu_ps(minidl_lanes16(n), p)
#define CM_LOADU(p) _mm512_loadu_ps(p)
#define CM_STOREU(p, v) _mm512_storeu_ps(p, v)
#define CM_SET1(x) _mm512_set1_ps(x)
#define CM_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
/* 16 accumulators of 32 registers; blocks of tiles are multiples of 16 rows */
#define CM_GEMM_ROWS 8
#define CM_STORE(p, n, v) _mm512_mask_storeu_ps(p, minidl_lanes16(n), v)
#define CM_STORE_ALL(p, v) _mm512_storeu_ps(p, v)
#define CM_GT(a, b) _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ)
#define CM_UNORD(a, b) _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q)
#define CM_MOR(a, b) ((__mmask16)((a) | (b)))
#define CM_MNONE() ((__mmask16)0)
#define CM_MANY(m) ((m) != 0)
#define CM_BLEND(m, a, b) _mm512_mask_blend_ps(m, a, b)
#define CM_IBLEND(m, a, b) _mm512_mask_blend_epi32(m, a, b)
#define CM_MASKZ(m, v) _mm512_maskz_mov_ps(m, v)
#define CM_ITOF(v) _mm512_castsi512_ps(v)
#define CM_READ_PLANES(src, codes, p0, n, r) wg_read_planes16(src, codes, p0, n, r)
#define CM_WRITE_PLANES(dst, n, o) wg_write_planes16(dst, n, o)
#define CM_WRITE_WINDOWS(dst, n, r, bytes) wg_write_windows16(dst, n, r, bytes)
#include "winograd_cm_impl.h"

/* ---- AVX2: 8 channels a vector, a plane's rows 0-1 and 2-3 in two vectors ---- */

/* r[j] = plane j's entries 0..7 and r[8 + j] its entries 8..15, as wg_spread_planes16
 * makes them, for j < n; zero for the others. */
__attribute__((target("avx2"))) static inline void
wg_spread_planes8(const float* g, const unsigned char* codes, int n, __m256 r[16])
{
    /* lane 4i + j of rows 0-1 (2-3): window 2(i/2) + j/2, position 2(i%2) + j%2 */
    const __m256i win_top = _mm256_setr_epi32(0, 0, 1, 1, 0, 0, 1, 1);
    const __m256i win_bottom = _mm256_setr_epi32(2, 2, 3, 3, 2, 2, 3, 3);
    const __m256i pos = _mm256_setr_epi32(0, 1, 0, 1, 2, 3, 2, 3);
    const __m256 z = _mm256_setzero_ps();
    for (int j = 0; j < 8; j++) {
        if (j < n) {
            int32_t four;
            memcpy(&four, codes + 4 * j, 4);
            /* the upper half is never indexed: permutes below read lanes 0..3 only */
            const __m256 g4 = _mm256_castps128_ps256(_mm_loadu_ps(g + 4 * j));
            const __m256i c4 = _mm256_cvtepu8_epi32(_mm_cvtsi32_si128(four));
            for (int h = 0; h < 2; h++) {
                const __m256i win = h ? win_bottom : win_top;
                const __m256 hit = _mm256_castsi256_ps(
                    _mm256_cmpeq_epi32(_mm256_permutevar8x32_epi32(c4, win), pos));
                const __m256 gv = _mm256_permutevar8x32_ps(g4, win);
                r[8 * h + j] = _mm256_and_ps(hit, _mm256_add_ps(z, gv));
            }
        } else {
            r[j] = r[8 + j] = z;
        }
    }
}

/* As wg_read_planes16, 8 lanes: r[4i + j] = entry (i, j) of planes p0 .. p0 + n - 1. */
__attribute__((target("avx2"))) static inline void
wg_read_planes8(const float* src, const unsigned char* codes, ptrdiff_t p0, int n,
                __m256 r[16])
{
    if (codes) {
        wg_spread_planes8(src + p0 * 4, codes + p0 * 4, n, r);
    } else {
        const float* s = src + p0 * 16;
        for (int j = 0; j < 8; j++) {
            r[j] = j < n ? _mm256_loadu_ps(s + j * 16) : _mm256_setzero_ps();
            r[8 + j] = j < n ? _mm256_loadu_ps(s + j * 16 + 8) : _mm256_setzero_ps();
        }
    }
    minidl_transpose8(r);
    minidl_transpose8(r + 8);
}

/* As wg_write_planes16, 8 lanes. */
__attribute__((target("avx2"))) static inline void
wg_write_planes8(float* dst, int n, __m256 o[16])
{
    minidl_transpose8(o);
    minidl_transpose8(o + 8);
    for (int j = 0; j < n; j++) {
        _mm256_storeu_ps(dst + j * 16, o[j]);
        _mm256_storeu_ps(dst + j * 16 + 8, o[8 + j]);
    }
}

/* As wg_write_windows16, 8 lanes. */
__attribute__((target("avx2"))) static inline void
wg_write_windows8(void* dst, int n, const __m256 r[4], int bytes)
{
    __m256 t[8];
    for (int k = 0; k < 8; k++)
        t[k] = k < 4 ? r[k] : _mm256_setzero_ps();
    minidl_transpose8(t);
    for (int j = 0; j < n; j++) {
        const __m128 four = _mm256_castps256_ps128(t[j]);
        if (bytes) {
            const __m128i w = _mm_packus_epi32(_mm_castps_si128(four), _mm_setzero_si128());
            const int32_t packed = _mm_cvtsi128_si32(_mm_packus_epi16(w, _mm_setzero_si128()));
            memcpy((unsigned char*)dst + j * 4, &packed, 4);
        } else {
            _mm_storeu_ps((float*)dst + j * 4, four);
        }
    }
}

#define CM_VW 8
#define CM_NAME(n) n##_avx2
#define CM_TARGET "avx2,fma"
#define CMV __m256
#define CMI __m256i
#define CMM __m256
#define CM_ZERO() _mm256_setzero_ps()
#define CM_IZERO() _mm256_setzero_si256()
#define CM_ISET1(x) _mm256_set1_epi32(x)
#define CM_LOAD(n, p) minidl_load8(p, n)
#define CM_LOADU(p) _mm256_loadu_ps(p)
#define CM_STOREU(p, v) _mm256_storeu_ps(p, v)
#define CM_SET1(x) _mm256_set1_ps(x)
#define CM_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
/* 8 accumulators of 16 registers; blocks of tiles are multiples of 16 rows (6 rows left
   single-row blocks and measured no faster) */
#define CM_GEMM_ROWS 4
#define CM_STORE(p, n, v) minidl_store8(p, n, v)
#define CM_STORE_ALL(p, v) _mm256_storeu_ps(p, v)
#define CM_GT(a, b) _mm256_cmp_ps(a, b, _CMP_GT_OQ)
#define CM_UNORD(a, b) _mm256_cmp_ps(a, b, _CMP_UNORD_Q)
#define CM_MOR(a, b) _mm256_or_ps(a, b)
#define CM_MNONE() _mm256_setzero_ps()
#define CM_MANY(m) (_mm256_movemask_ps(m) != 0)
#define CM_BLEND(m, a, b) _mm256_blendv_ps(a, b, m)
#define CM_IBLEND(m, a, b)                                                               \
    _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(a), _mm256_castsi256_ps(b), m))
#define CM_MASKZ(m, v) _mm256_and_ps(m, v)
#define CM_ITOF(v) _mm256_castsi256_ps(v)
#define CM_READ_PLANES(src, codes, p0, n, r) wg_read_planes8(src, codes, p0, n, r)
#define CM_WRITE_PLANES(dst, n, o) wg_write_planes8(dst, n, o)
#define CM_WRITE_WINDOWS(dst, n, r, bytes) wg_write_windows8(dst, n, r, bytes)
#include "winograd_cm_impl.h"
#endif

/* 1 where the channel-major transforms run: float32 on AVX2 + FMA or AVX-512. */
static int wg_channel_major(void)
{
#ifdef WG_X86
    return wg_level >= MINIDL_CPU_AVX2;
#else
    return 0;
#endif
}

/* The entry points (callers check wg_channel_major; elsewhere these do nothing). */
#ifdef WG_X86
#define WG_CM_CALL(name, args)                                                           \
    (wg_level == MINIDL_CPU_AVX512 ? name##_avx512 args : name##_avx2 args)
#else
#define WG_CM_CALL(name, args) 0
#endif

/* v[ξ*vs + t*vt + c] = (Bᵀ d B)[ξ] of x's plane (t, c), x (m, C, 4, 4); or, with codes,
 * of the plane the 2x2 max pool's backward makes of x (m, C, 2, 2) and codes. */
static void wg_cm_input_f(const float* x, const unsigned char* codes, int C, ptrdiff_t m,
                          float* v, ptrdiff_t vs, ptrdiff_t vt)
{
    (void)WG_CM_CALL(wg_cm_input_f, (x, codes, C, m, v, vs, vt));
}

/* y (m, F, 4, 4) = Aᵀ M A + bias (bias NULL: none), M[ξ*ms + t*mt + f]. */
static void wg_cm_output_f(const float* M, ptrdiff_t ms, ptrdiff_t mt, const float* bias,
                           float* y, int F, ptrdiff_t m)
{
    (void)WG_CM_CALL(wg_cm_output_f, (M, ms, mt, bias, y, F, m));
}

/* yp (m, F, 2, 2) = the 2x2 max pool of what wg_cm_output_f writes, relu'd if ``relu``,
 * and (codes not NULL) each window's code as the 2x2 pool's: the row-major position 0..3
 * of its first maximum, 4 where the ReLU zeroed it.  Returns nonzero, with nothing
 * reliable written, if a NaN reached the pool (the caller then pools y made the plain
 * way, which lets a NaN win). */
static int wg_cm_output_pool_f(const float* M, ptrdiff_t ms, ptrdiff_t mt, const float* bias,
                               float* yp, unsigned char* codes, int F, ptrdiff_t m, int relu)
{
#ifdef WG_X86
    return WG_CM_CALL(wg_cm_output_pool_f, (M, ms, mt, bias, yp, codes, F, m, relu));
#else
    (void)M; (void)ms; (void)mt; (void)bias; (void)yp; (void)codes; (void)F; (void)m;
    (void)relu;
    return 1;
#endif
}

/* C (m, n) = op(A) (m, k) @ B (k, n) (+ C where ``accumulate``), op(A) = A or, where
 * ``trans_a``, Aᵀ, all row-major: the channel-major passes' GEMMs (no packing, no pass
 * over C first). */
static void wg_cm_gemm(int trans_a, int m, int n, int k, const float* a, ptrdiff_t lda,
                       const float* b, ptrdiff_t ldb, float* c, ptrdiff_t ldc, int accumulate)
{
    (void)WG_CM_CALL(wg_cm_gemm, (trans_a, m, n, k, a, lda, b, ldb, c, ldc, accumulate));
}

/* dM[ξ*ms + t*F + f] = (A dY Aᵀ)[ξ] of dy's plane (t, f), dy (m, F, 4, 4), or with codes
 * the plane the pool's backward makes of dy (m, F, 2, 2); db[f] (if not NULL) += each
 * plane's sum, added in a fixed order. */
static void wg_cm_adjoint_f(const float* dy, const unsigned char* codes, int F, ptrdiff_t m,
                            float* dM, ptrdiff_t ms, double* db)
{
    (void)WG_CM_CALL(wg_cm_adjoint_f, (dy, codes, F, m, dM, ms, db));
}
#endif
