/* 16x16 float transposes in AVX-512 registers, for kernels whose vectors run across
 * one index (channels, filters) and whose memory runs across another (positions). */
#ifndef MINIDL_AVX512_TRANSPOSE_H
#define MINIDL_AVX512_TRANSPOSE_H
#include <immintrin.h>

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
#endif
