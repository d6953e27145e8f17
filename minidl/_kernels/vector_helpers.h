/* Lane masks, partial loads and stores, and register transposes, AVX-512 (16 floats)
 * and AVX2 (8 floats), for kernels whose vectors run across one index (channels,
 * filters, tiles) and whose memory runs across another (positions). */
#ifndef MINIDL_VECTOR_HELPERS_H
#define MINIDL_VECTOR_HELPERS_H
#include <stddef.h>
#include <immintrin.h>

/* The first n of 16 lanes (all 16 from n = 16 on). */
static inline __mmask16 minidl_lanes16(ptrdiff_t n)
{
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
}

/* The first two steps of a register transpose of n rows (n = 8 or 16; out may be in):
 * within each 128-bit lane L, out[4g + j] holds entry 4L + j of rows 4g .. 4g+3. */
__attribute__((target("avx512f"), always_inline)) static inline void
minidl_transpose_4x4_blocks(const __m512* in, __m512* out, const int n)
{
    __m512 t[16];
    for (int i = 0; i < n; i += 2) {
        t[i] = _mm512_unpacklo_ps(in[i], in[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(in[i], in[i + 1]);
    }
    for (int i = 0; i < n; i += 4) {
        out[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        out[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        out[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        out[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
}

/* r[i] lane j <- r[j] lane i. */
__attribute__((target("avx512f"))) static inline void minidl_transpose16(__m512 r[16])
{
    __m512 t[16];
    minidl_transpose_4x4_blocks(r, r, 16);   /* then whole 128-bit lanes across rows */
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
        r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xDD);
    }
}

/* The first n of 8 lanes as an AVX2 mask (all bits set in those lanes). */
__attribute__((target("avx2"))) static inline __m256 minidl_lanes8(int n)
{
    const __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n), index));
}

/* The first n of the 8 floats at p, the other lanes zero; and the store of v's first n
 * lanes to p.  Whole vectors go unmasked (AMD's masked moves are slow). */
__attribute__((target("avx2"))) static inline __m256 minidl_load8(const float* p, int n)
{
    return n >= 8 ? _mm256_loadu_ps(p)
                  : _mm256_maskload_ps(p, _mm256_castps_si256(minidl_lanes8(n)));
}

__attribute__((target("avx2"))) static inline void minidl_store8(float* p, int n, __m256 v)
{
    if (n >= 8)
        _mm256_storeu_ps(p, v);
    else
        _mm256_maskstore_ps(p, _mm256_castps_si256(minidl_lanes8(n)), v);
}

/* r[i] lane j <- r[j] lane i, for 8 vectors of 8 (AVX2). */
__attribute__((target("avx2"))) static inline void minidl_transpose8(__m256 r[8])
{
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}
#endif
