/* The per-tile arithmetic of Winograd's three data transforms (_winograd.pyx), for the
 * F(2x2, 3x3), F(4x4, 3x3) and F(4x4, 5x5) tilings, vectorised across the m tiles of a
 * block.
 *
 * Layouts.  The gathered input patches d and dY tiles e come in two layouts
 * (MINIDL_WINOGRAD_GATHERED's L): ``tiles``, tile k's values contiguous and row-major
 * ((m, 16) for 4x4 patches and tiles, (m, 4) for 2x2 tiles, (m, 64) with rows 8 apart
 * for 6x6 and 8x8 patches: gcc vectorises the loop over tiles for a power-of-two stride,
 * not for 36), gathered with a few short row copies per tile; and ``rows``,
 * position-major (one row per entry, row stride ds or es), where every load is a whole
 * vector: what wg_load_patches_f makes, and planes that are one tile each give when
 * copied transposed.  The r x r output tiles o (m, r*r) are tile-major.  The
 * transformed arrays V, M, dM are (a*a rows, m) with a row stride: row ξ is the GEMM
 * operand of position ξ.
 *
 * Plain C with scalars only (no local arrays) and ``ivdep`` (the rows of one output
 * array never overlap; gcc cannot prove it for an unknown row stride): the loops over k
 * then vectorise (checked with gcc -fopt-info-vec). */
#ifndef MINIDL_WINOGRAD_ARITH_H
#define MINIDL_WINOGRAD_ARITH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "cpu_level.h"

/* Where one tile's a x a patch lies in a plane: entry (i, s) is plane[off + i*pitch + s]
 * where bit s of rows[i] is set, else zero (the padding). */
typedef struct { ptrdiff_t off; unsigned short rows[8]; } wg_patch;

#if defined(_MSC_VER) && !defined(restrict)
#define restrict __restrict
#endif
#if defined(__GNUC__) && !defined(__clang__)
#define WG_IVDEP _Pragma("GCC ivdep")
#else
#define WG_IVDEP
#endif

#define WG_L(p, s, i) (p)[(i) * (s) + k]   /* row i of (rows, m), row stride s */
#define WG_T(p, n, i) (p)[k * (n) + (i)]   /* entry i of tile k of (m, n) */

/* F(4x4, 3x3), one dimension, from Lavin & Gray's matrices:
 *
 *          | 4  0 -5  0  1  0 |         | 1/4    0    0  |
 *          | 0 -4 -4  1  1  0 |         | -1/6 -1/6 -1/6 |     | 1  1  1  1  1  0 |
 *    Bᵀ =  | 0  4 -4 -1  1  0 |    G =  | -1/6  1/6 -1/6 | Aᵀ= | 0  1 -1  2 -2  0 |
 *          | 0 -2 -1  2  1  0 |         | 1/24 1/12  1/6 |     | 0  1  1  4  4  0 |
 *          | 0  2 -1 -2  1  0 |         | 1/24 -1/12 1/6 |     | 0  1 -1  8 -8  1 |
 *          | 0  4  0 -5  0  1 |         | 0      0    1  |
 *
 * y = Bᵀ d (6 -> 6), y = Aᵀ m (+ tail) (6 -> 4) and y = A e (4 -> 6), each written to six
 * or four destinations.  ``tail`` is appended to each Aᵀ row (``+ b`` adds the bias;
 * empty adds nothing, rather than ``+ 0``, which the compiler may not drop). */
#define WG4_BT(y0, y1, y2, y3, y4, y5, d0, d1, d2, d3, d4, d5)                          \
    y0 = 4 * (d0) - 5 * (d2) + (d4);                                                    \
    y1 = ((d3) + (d4)) - 4 * ((d1) + (d2));                                             \
    y2 = ((d4) - (d3)) + 4 * ((d1) - (d2));                                             \
    y3 = ((d4) - (d2)) + 2 * ((d3) - (d1));                                             \
    y4 = ((d4) - (d2)) - 2 * ((d3) - (d1));                                             \
    y5 = 4 * (d1) - 5 * (d3) + (d5);
#define WG4_AT(y0, y1, y2, y3, m0, m1, m2, m3, m4, m5, tail)                            \
    y0 = (m0) + ((m1) + (m2)) + ((m3) + (m4)) tail;                                     \
    y1 = ((m1) - (m2)) + 2 * ((m3) - (m4)) tail;                                        \
    y2 = ((m1) + (m2)) + 4 * ((m3) + (m4)) tail;                                        \
    y3 = ((m1) - (m2)) + 8 * ((m3) - (m4)) + (m5) tail;
#define WG4_A(y0, y1, y2, y3, y4, y5, e0, e1, e2, e3)                                   \
    y0 = (e0);                                                                          \
    y1 = ((e0) + (e2)) + ((e1) + (e3));                                                 \
    y2 = ((e0) + (e2)) - ((e1) + (e3));                                                 \
    y3 = ((e0) + 4 * (e2)) + 2 * ((e1) + 4 * (e3));                                     \
    y4 = ((e0) + 4 * (e2)) - 2 * ((e1) + 4 * (e3));                                     \
    y5 = (e3);

/* F(4x4, 5x5), one dimension, on the eight points 0, 1, -1, 2, -2, 1/2, -1/2 and
 * infinity (Toom-Cook; derived exactly with rationals, G and Bᵀ scaled so that G's first
 * row is (1 0 0 0 0)):
 *
 *          | 1   0 -21/4   0    21/4   0  -1  0 |
 *          | 0   1   1   -17/4 -17/4   1   1  0 |      Aᵀ = | 1 1  1 1  1  1    1   0 |
 *          | 0  -1   1    17/4 -17/4  -1   1  0 |           | 0 1 -1 2 -2 1/2 -1/2  0 |
 *    Bᵀ =  | 0  1/2 1/4  -5/2  -5/4    2   1  0 |           | 0 1  1 4  4 1/4  1/4  0 |
 *          | 0 -1/2 1/4   5/2  -5/4   -2   1  0 |           | 0 1 -1 8 -8 1/8 -1/8  1 |
 *          | 0   2   4   -5/2   -5    1/2  1  0 |
 *          | 0  -2   4    5/2   -5   -1/2  1  0 |      G: _winograd.pyx's G45
 *          | 0  -1   0    21/4    0  -21/4  0  1 |
 *
 * Rows 1-2, 3-4 and 5-6 of each are an even part plus or minus an odd part; wg_real is
 * the element type, typedef'd in each routine. */
#define WG8_BT(y0, y1, y2, y3, y4, y5, y6, y7, d0, d1, d2, d3, d4, d5, d6, d7)          \
    y0 = ((d0) - (d6)) + 5.25f * ((d4) - (d2));                                         \
    y7 = ((d7) - (d1)) + 5.25f * ((d3) - (d5));                                         \
    { wg_real ev_ = ((d2) + (d6)) - 4.25f * (d4);                                       \
      wg_real od_ = ((d1) + (d5)) - 4.25f * (d3);                                       \
      y1 = ev_ + od_; y2 = ev_ - od_; }                                                 \
    { wg_real ev_ = (0.25f * (d2) + (d6)) - 1.25f * (d4);                               \
      wg_real od_ = (0.5f * (d1) + 2 * (d5)) - 2.5f * (d3);                             \
      y3 = ev_ + od_; y4 = ev_ - od_; }                                                 \
    { wg_real ev_ = (4 * (d2) + (d6)) - 5 * (d4);                                       \
      wg_real od_ = (2 * (d1) + 0.5f * (d5)) - 2.5f * (d3);                             \
      y5 = ev_ + od_; y6 = ev_ - od_; }
#define WG45_AT(y0, y1, y2, y3, m0, m1, m2, m3, m4, m5, m6, m7, tail)                   \
    { wg_real s1_ = (m1) + (m2), t1_ = (m1) - (m2);                                     \
      wg_real s2_ = (m3) + (m4), t2_ = (m3) - (m4);                                     \
      wg_real s3_ = (m5) + (m6), t3_ = (m5) - (m6);                                     \
      y0 = (m0) + s1_ + s2_ + s3_ tail;                                                 \
      y1 = t1_ + 2 * t2_ + 0.5f * t3_ tail;                                             \
      y2 = s1_ + 4 * s2_ + 0.25f * s3_ tail;                                            \
      y3 = t1_ + 8 * t2_ + 0.125f * t3_ + (m7) tail; }
#define WG45_A(y0, y1, y2, y3, y4, y5, y6, y7, e0, e1, e2, e3)                          \
    y0 = (e0);                                                                          \
    { wg_real ev_ = (e0) + (e2), od_ = (e1) + (e3);                                     \
      y1 = ev_ + od_; y2 = ev_ - od_; }                                                 \
    { wg_real ev_ = (e0) + 4 * (e2), od_ = 2 * (e1) + 8 * (e3);                         \
      y3 = ev_ + od_; y4 = ev_ - od_; }                                                 \
    { wg_real ev_ = (e0) + 0.25f * (e2), od_ = 0.5f * (e1) + 0.125f * (e3);             \
      y5 = ev_ + od_; y6 = ev_ - od_; }                                                 \
    y7 = (e3);

#define WG_D4_tiles(i) WG_T(d, 16, i)                    /* entry i of a 4x4 patch */
#define WG_D6_tiles(i) WG_T(d, 64, 8 * ((i) / 6) + (i) % 6)   /* ... of a 6x6 one */
#define WG_D8_tiles(i) WG_T(d, 64, i)                    /* ... of an 8x8 one */
#define WG_D4_rows(i) WG_L(d, ds, i)
#define WG_D6_rows(i) WG_L(d, ds, i)
#define WG_D8_rows(i) WG_L(d, ds, i)
#define WG_V(i) WG_L(v, vs, i)
#define WG_M(i) WG_L(M, ms, i)
#define WG_O(i) WG_T(o, 16, i)
#define WG_E_tiles(i) WG_T(e, 16, i)                     /* entry i of a 4x4 dY tile */
#define WG_E2_tiles(i) WG_T(e, 4, i)                     /* ... of a 2x2 one */
#define WG_E_rows(i) WG_L(e, es, i)
#define WG_E2_rows(i) WG_L(e, es, i)
#define WG_DM(i) WG_L(dM, ms, i)

#define MINIDL_WINOGRAD_ARITH(T, S, ATTR)                                                \
/* F(2x2, 3x3): o (m, 4): tile k's y00 y01 y10 y11 = Aᵀ M A + b, M (16 rows, stride     \
   ms) */                                                                                \
ATTR static void wg2_output_arith_##S(const T* restrict M, ptrdiff_t ms, T b,                \
                                 T* restrict o, ptrdiff_t m) {                           \
    WG_IVDEP                                                                             \
    for (ptrdiff_t k = 0; k < m; k++) {                                                  \
        /* Aᵀ M: rows u0, u1 */                                                          \
        T u00 = WG_M(0) + WG_M(4) + WG_M(8), u01 = WG_M(1) + WG_M(5) + WG_M(9);          \
        T u02 = WG_M(2) + WG_M(6) + WG_M(10), u03 = WG_M(3) + WG_M(7) + WG_M(11);        \
        T u10 = WG_M(4) - WG_M(8) - WG_M(12), u11 = WG_M(5) - WG_M(9) - WG_M(13);        \
        T u12 = WG_M(6) - WG_M(10) - WG_M(14), u13 = WG_M(7) - WG_M(11) - WG_M(15);      \
        /* (Aᵀ M) A + b */                                                               \
        WG_T(o, 4, 0) = u00 + u01 + u02 + b;                                             \
        WG_T(o, 4, 1) = u01 - u02 - u03 + b;                                             \
        WG_T(o, 4, 2) = u10 + u11 + u12 + b;                                             \
        WG_T(o, 4, 3) = u11 - u12 - u13 + b;                                             \
    }                                                                                    \
}                                                                                        \
/* F(4x4, 3x3): o (m, 16): tile k's 4x4 outputs = Aᵀ M A + b, M (36 rows, stride ms) */ \
ATTR static void wg4_output_arith_##S(const T* restrict M, ptrdiff_t ms, T b,                \
                                 T* restrict o, ptrdiff_t m) {                           \
    WG_IVDEP                                                                             \
    for (ptrdiff_t k = 0; k < m; k++) {                                                  \
        /* Aᵀ M: u<s><i> is entry i of column s */                                       \
        T u00, u01, u02, u03, u10, u11, u12, u13, u20, u21, u22, u23;                    \
        T u30, u31, u32, u33, u40, u41, u42, u43, u50, u51, u52, u53;                    \
        WG4_AT(u00, u01, u02, u03,                                                       \
               WG_M(0), WG_M(6), WG_M(12), WG_M(18), WG_M(24), WG_M(30), )               \
        WG4_AT(u10, u11, u12, u13,                                                       \
               WG_M(1), WG_M(7), WG_M(13), WG_M(19), WG_M(25), WG_M(31), )               \
        WG4_AT(u20, u21, u22, u23,                                                       \
               WG_M(2), WG_M(8), WG_M(14), WG_M(20), WG_M(26), WG_M(32), )               \
        WG4_AT(u30, u31, u32, u33,                                                       \
               WG_M(3), WG_M(9), WG_M(15), WG_M(21), WG_M(27), WG_M(33), )               \
        WG4_AT(u40, u41, u42, u43,                                                       \
               WG_M(4), WG_M(10), WG_M(16), WG_M(22), WG_M(28), WG_M(34), )              \
        WG4_AT(u50, u51, u52, u53,                                                       \
               WG_M(5), WG_M(11), WG_M(17), WG_M(23), WG_M(29), WG_M(35), )              \
        /* (Aᵀ M) A + b: output row i from row i of Aᵀ M */                              \
        WG4_AT(WG_O(0), WG_O(1), WG_O(2), WG_O(3),                                       \
               u00, u10, u20, u30, u40, u50, + b)                                        \
        WG4_AT(WG_O(4), WG_O(5), WG_O(6), WG_O(7),                                       \
               u01, u11, u21, u31, u41, u51, + b)                                        \
        WG4_AT(WG_O(8), WG_O(9), WG_O(10), WG_O(11),                                     \
               u02, u12, u22, u32, u42, u52, + b)                                        \
        WG4_AT(WG_O(12), WG_O(13), WG_O(14), WG_O(15),                                   \
               u03, u13, u23, u33, u43, u53, + b)                                        \
    }                                                                                    \
}                                                                                        \
/* F(4x4, 5x5): o (m, 16): tile k's 4x4 outputs = Aᵀ M A + b, M (64 rows, stride ms) */  \
ATTR static void wg45_output_arith_##S(const T* restrict M, ptrdiff_t ms, T b,           \
                                  T* restrict o, ptrdiff_t m) {                          \
    typedef T wg_real;                                                                   \
    WG_IVDEP                                                                             \
    for (ptrdiff_t k = 0; k < m; k++) {                                                  \
        /* Aᵀ M: u<s><i> is entry i of column s */                                       \
        T u00, u01, u02, u03, u10, u11, u12, u13, u20, u21, u22, u23, u30, u31, u32,     \
          u33, u40, u41, u42, u43, u50, u51, u52, u53, u60, u61, u62, u63, u70, u71,     \
          u72, u73;                                                                      \
        WG45_AT(u00, u01, u02, u03, WG_M(0), WG_M(8), WG_M(16), WG_M(24), WG_M(32),      \
                WG_M(40), WG_M(48), WG_M(56), )                                          \
        WG45_AT(u10, u11, u12, u13, WG_M(1), WG_M(9), WG_M(17), WG_M(25), WG_M(33),      \
                WG_M(41), WG_M(49), WG_M(57), )                                          \
        WG45_AT(u20, u21, u22, u23, WG_M(2), WG_M(10), WG_M(18), WG_M(26), WG_M(34),     \
                WG_M(42), WG_M(50), WG_M(58), )                                          \
        WG45_AT(u30, u31, u32, u33, WG_M(3), WG_M(11), WG_M(19), WG_M(27), WG_M(35),     \
                WG_M(43), WG_M(51), WG_M(59), )                                          \
        WG45_AT(u40, u41, u42, u43, WG_M(4), WG_M(12), WG_M(20), WG_M(28), WG_M(36),     \
                WG_M(44), WG_M(52), WG_M(60), )                                          \
        WG45_AT(u50, u51, u52, u53, WG_M(5), WG_M(13), WG_M(21), WG_M(29), WG_M(37),     \
                WG_M(45), WG_M(53), WG_M(61), )                                          \
        WG45_AT(u60, u61, u62, u63, WG_M(6), WG_M(14), WG_M(22), WG_M(30), WG_M(38),     \
                WG_M(46), WG_M(54), WG_M(62), )                                          \
        WG45_AT(u70, u71, u72, u73, WG_M(7), WG_M(15), WG_M(23), WG_M(31), WG_M(39),     \
                WG_M(47), WG_M(55), WG_M(63), )                                          \
        /* (Aᵀ M) A + b: output row i from row i of Aᵀ M */                              \
        WG45_AT(WG_O(0), WG_O(1), WG_O(2), WG_O(3), u00, u10, u20, u30, u40, u50, u60,   \
                u70, + b)                                                                \
        WG45_AT(WG_O(4), WG_O(5), WG_O(6), WG_O(7), u01, u11, u21, u31, u41, u51, u61,   \
                u71, + b)                                                                \
        WG45_AT(WG_O(8), WG_O(9), WG_O(10), WG_O(11), u02, u12, u22, u32, u42, u52,      \
                u62, u72, + b)                                                           \
        WG45_AT(WG_O(12), WG_O(13), WG_O(14), WG_O(15), u03, u13, u23, u33, u43, u53,    \
                u63, u73, + b)                                                           \
    }                                                                                    \
}

/* The transforms of gathered data: the input patches d and the dY tiles e, in layout L
 * (see the top; ds and es are the ``rows`` layout's row strides, unused by ``tiles``). */
#define MINIDL_WINOGRAD_GATHERED(T, S, L, ATTR)                                          \
/* F(2x2, 3x3): v (16 rows, stride vs) = Bᵀ d B, d: the patches */                       \
ATTR static void wg2_input_##L##_##S(const T* restrict d, ptrdiff_t ds,                  \
                                T* restrict v, ptrdiff_t vs, ptrdiff_t m) {              \
    WG_IVDEP                                                                             \
    for (ptrdiff_t k = 0; k < m; k++) {                                                  \
        /* Bᵀ d, column s: e0..e3 */                                                     \
        T e00 = WG_D4_##L(0) - WG_D4_##L(8), e01 = WG_D4_##L(1) - WG_D4_##L(9);          \
        T e02 = WG_D4_##L(2) - WG_D4_##L(10), e03 = WG_D4_##L(3) - WG_D4_##L(11);        \
        T e10 = WG_D4_##L(4) + WG_D4_##L(8), e11 = WG_D4_##L(5) + WG_D4_##L(9);          \
        T e12 = WG_D4_##L(6) + WG_D4_##L(10), e13 = WG_D4_##L(7) + WG_D4_##L(11);        \
        T e20 = WG_D4_##L(8) - WG_D4_##L(4), e21 = WG_D4_##L(9) - WG_D4_##L(5);          \
        T e22 = WG_D4_##L(10) - WG_D4_##L(6), e23 = WG_D4_##L(11) - WG_D4_##L(7);        \
        T e30 = WG_D4_##L(4) - WG_D4_##L(12), e31 = WG_D4_##L(5) - WG_D4_##L(13);        \
        T e32 = WG_D4_##L(6) - WG_D4_##L(14), e33 = WG_D4_##L(7) - WG_D4_##L(15);        \
        /* (Bᵀ d) B */                                                                   \
        WG_V(0) = e00 - e02;  WG_V(1) = e01 + e02;                                       \
        WG_V(2) = e02 - e01;  WG_V(3) = e01 - e03;                                       \
        WG_V(4) = e10 - e12;  WG_V(5) = e11 + e12;                                       \
        WG_V(6) = e12 - e11;  WG_V(7) = e11 - e13;                                       \
        WG_V(8) = e20 - e22;  WG_V(9) = e21 + e22;                                       \
        WG_V(10) = e22 - e21; WG_V(11) = e21 - e23;                                      \
        WG_V(12) = e30 - e32; WG_V(13) = e31 + e32;                                      \
        WG_V(14) = e32 - e31; WG_V(15) = e31 - e33;                                      \
    }                                                                                    \
}                                                                                        \
/* F(4x4, 3x3): v (36 rows, stride vs) = Bᵀ d B, d: the patches */                       \
ATTR static void wg4_input_##L##_##S(const T* restrict d, ptrdiff_t ds,                  \
                                T* restrict v, ptrdiff_t vs, ptrdiff_t m) {              \
    WG_IVDEP                                                                             \
    for (ptrdiff_t k = 0; k < m; k++) {                                                  \
        /* Bᵀ d: c<s><i> is entry i of column s */                                       \
        T c00, c01, c02, c03, c04, c05, c10, c11, c12, c13, c14, c15;                    \
        T c20, c21, c22, c23, c24, c25, c30, c31, c32, c33, c34, c35;                    \
        T c40, c41, c42, c43, c44, c45, c50, c51, c52, c53, c54, c55;                    \
        WG4_BT(c00, c01, c02, c03, c04, c05,                                             \
               WG_D6_##L(0), WG_D6_##L(6), WG_D6_##L(12), WG_D6_##L(18), WG_D6_##L(24), WG_D6_##L(30)) \
        WG4_BT(c10, c11, c12, c13, c14, c15,                                             \
               WG_D6_##L(1), WG_D6_##L(7), WG_D6_##L(13), WG_D6_##L(19), WG_D6_##L(25), WG_D6_##L(31)) \
        WG4_BT(c20, c21, c22, c23, c24, c25,                                             \
               WG_D6_##L(2), WG_D6_##L(8), WG_D6_##L(14), WG_D6_##L(20), WG_D6_##L(26), WG_D6_##L(32)) \
        WG4_BT(c30, c31, c32, c33, c34, c35,                                             \
               WG_D6_##L(3), WG_D6_##L(9), WG_D6_##L(15), WG_D6_##L(21), WG_D6_##L(27), WG_D6_##L(33)) \
        WG4_BT(c40, c41, c42, c43, c44, c45,                                             \
               WG_D6_##L(4), WG_D6_##L(10), WG_D6_##L(16), WG_D6_##L(22), WG_D6_##L(28), WG_D6_##L(34)) \
        WG4_BT(c50, c51, c52, c53, c54, c55,                                             \
               WG_D6_##L(5), WG_D6_##L(11), WG_D6_##L(17), WG_D6_##L(23), WG_D6_##L(29), WG_D6_##L(35)) \
        /* (Bᵀ d) B: row i of V from row i of Bᵀ d */                                    \
        WG4_BT(WG_V(0), WG_V(1), WG_V(2), WG_V(3), WG_V(4), WG_V(5),                     \
               c00, c10, c20, c30, c40, c50)                                             \
        WG4_BT(WG_V(6), WG_V(7), WG_V(8), WG_V(9), WG_V(10), WG_V(11),                   \
               c01, c11, c21, c31, c41, c51)                                             \
        WG4_BT(WG_V(12), WG_V(13), WG_V(14), WG_V(15), WG_V(16), WG_V(17),               \
               c02, c12, c22, c32, c42, c52)                                             \
        WG4_BT(WG_V(18), WG_V(19), WG_V(20), WG_V(21), WG_V(22), WG_V(23),               \
               c03, c13, c23, c33, c43, c53)                                             \
        WG4_BT(WG_V(24), WG_V(25), WG_V(26), WG_V(27), WG_V(28), WG_V(29),               \
               c04, c14, c24, c34, c44, c54)                                             \
        WG4_BT(WG_V(30), WG_V(31), WG_V(32), WG_V(33), WG_V(34), WG_V(35),               \
               c05, c15, c25, c35, c45, c55)                                             \
    }                                                                                    \
}                                                                                        \
/* F(4x4, 5x5): v (64 rows, stride vs) = Bᵀ d B, d: the patches */                       \
ATTR static void wg45_input_##L##_##S(const T* restrict d, ptrdiff_t ds,                 \
                                 T* restrict v, ptrdiff_t vs, ptrdiff_t m) {             \
    typedef T wg_real;                                                                   \
    WG_IVDEP                                                                             \
    for (ptrdiff_t k = 0; k < m; k++) {                                                  \
        /* Bᵀ d: c<s><i> is entry i of column s */                                       \
        T c00, c01, c02, c03, c04, c05, c06, c07, c10, c11, c12, c13, c14, c15, c16,     \
          c17, c20, c21, c22, c23, c24, c25, c26, c27, c30, c31, c32, c33, c34, c35,     \
          c36, c37, c40, c41, c42, c43, c44, c45, c46, c47, c50, c51, c52, c53, c54,     \
          c55, c56, c57, c60, c61, c62, c63, c64, c65, c66, c67, c70, c71, c72, c73,     \
          c74, c75, c76, c77;                                                            \
        WG8_BT(c00, c01, c02, c03, c04, c05, c06, c07, WG_D8_##L(0), WG_D8_##L(8),       \
               WG_D8_##L(16), WG_D8_##L(24), WG_D8_##L(32), WG_D8_##L(40),               \
               WG_D8_##L(48), WG_D8_##L(56))                                             \
        WG8_BT(c10, c11, c12, c13, c14, c15, c16, c17, WG_D8_##L(1), WG_D8_##L(9),       \
               WG_D8_##L(17), WG_D8_##L(25), WG_D8_##L(33), WG_D8_##L(41),               \
               WG_D8_##L(49), WG_D8_##L(57))                                             \
        WG8_BT(c20, c21, c22, c23, c24, c25, c26, c27, WG_D8_##L(2),                     \
               WG_D8_##L(10), WG_D8_##L(18), WG_D8_##L(26), WG_D8_##L(34),               \
               WG_D8_##L(42), WG_D8_##L(50), WG_D8_##L(58))                              \
        WG8_BT(c30, c31, c32, c33, c34, c35, c36, c37, WG_D8_##L(3),                     \
               WG_D8_##L(11), WG_D8_##L(19), WG_D8_##L(27), WG_D8_##L(35),               \
               WG_D8_##L(43), WG_D8_##L(51), WG_D8_##L(59))                              \
        WG8_BT(c40, c41, c42, c43, c44, c45, c46, c47, WG_D8_##L(4),                     \
               WG_D8_##L(12), WG_D8_##L(20), WG_D8_##L(28), WG_D8_##L(36),               \
               WG_D8_##L(44), WG_D8_##L(52), WG_D8_##L(60))                              \
        WG8_BT(c50, c51, c52, c53, c54, c55, c56, c57, WG_D8_##L(5),                     \
               WG_D8_##L(13), WG_D8_##L(21), WG_D8_##L(29), WG_D8_##L(37),               \
               WG_D8_##L(45), WG_D8_##L(53), WG_D8_##L(61))                              \
        WG8_BT(c60, c61, c62, c63, c64, c65, c66, c67, WG_D8_##L(6),                     \
               WG_D8_##L(14), WG_D8_##L(22), WG_D8_##L(30), WG_D8_##L(38),               \
               WG_D8_##L(46), WG_D8_##L(54), WG_D8_##L(62))                              \
        WG8_BT(c70, c71, c72, c73, c74, c75, c76, c77, WG_D8_##L(7),                     \
               WG_D8_##L(15), WG_D8_##L(23), WG_D8_##L(31), WG_D8_##L(39),               \
               WG_D8_##L(47), WG_D8_##L(55), WG_D8_##L(63))                              \
        /* (Bᵀ d) B: row i of V from row i of Bᵀ d */                                    \
        WG8_BT(WG_V(0), WG_V(1), WG_V(2), WG_V(3), WG_V(4), WG_V(5), WG_V(6), WG_V(7),   \
               c00, c10, c20, c30, c40, c50, c60, c70)                                   \
        WG8_BT(WG_V(8), WG_V(9), WG_V(10), WG_V(11), WG_V(12), WG_V(13), WG_V(14),       \
               WG_V(15), c01, c11, c21, c31, c41, c51, c61, c71)                         \
        WG8_BT(WG_V(16), WG_V(17), WG_V(18), WG_V(19), WG_V(20), WG_V(21), WG_V(22),     \
               WG_V(23), c02, c12, c22, c32, c42, c52, c62, c72)                         \
        WG8_BT(WG_V(24), WG_V(25), WG_V(26), WG_V(27), WG_V(28), WG_V(29), WG_V(30),     \
               WG_V(31), c03, c13, c23, c33, c43, c53, c63, c73)                         \
        WG8_BT(WG_V(32), WG_V(33), WG_V(34), WG_V(35), WG_V(36), WG_V(37), WG_V(38),     \
               WG_V(39), c04, c14, c24, c34, c44, c54, c64, c74)                         \
        WG8_BT(WG_V(40), WG_V(41), WG_V(42), WG_V(43), WG_V(44), WG_V(45), WG_V(46),     \
               WG_V(47), c05, c15, c25, c35, c45, c55, c65, c75)                         \
        WG8_BT(WG_V(48), WG_V(49), WG_V(50), WG_V(51), WG_V(52), WG_V(53), WG_V(54),     \
               WG_V(55), c06, c16, c26, c36, c46, c56, c66, c76)                         \
        WG8_BT(WG_V(56), WG_V(57), WG_V(58), WG_V(59), WG_V(60), WG_V(61), WG_V(62),     \
               WG_V(63), c07, c17, c27, c37, c47, c57, c67, c77)                         \
    }                                                                                    \
}                                                                                        \
/* F(2x2, 3x3): dM (16 rows, stride ms) = A dY Aᵀ, e: the dY tiles e00 e01 e10           \
   e11 */                                                                                \
ATTR static void wg2_adjoint_##L##_##S(const T* restrict e, ptrdiff_t es, T* restrict dM, \
                                   ptrdiff_t ms, ptrdiff_t m) {                          \
    WG_IVDEP                                                                             \
    for (ptrdiff_t k = 0; k < m; k++) {                                                  \
        T e00 = WG_E2_##L(0), e01 = WG_E2_##L(1);                                        \
        T e10 = WG_E2_##L(2), e11 = WG_E2_##L(3);                                        \
        /* A dY: rows (a_i, b_i) */                                                      \
        T a0 = e00, b0 = e01, a1 = e00 + e10, b1 = e01 + e11;                            \
        T a2 = e00 - e10, b2 = e01 - e11, a3 = -e10, b3 = -e11;                          \
        /* (A dY) Aᵀ */                                                                  \
        WG_DM(0) = a0;  WG_DM(1) = a0 + b0;  WG_DM(2) = a0 - b0;  WG_DM(3) = -b0;        \
        WG_DM(4) = a1;  WG_DM(5) = a1 + b1;  WG_DM(6) = a1 - b1;  WG_DM(7) = -b1;        \
        WG_DM(8) = a2;  WG_DM(9) = a2 + b2;  WG_DM(10) = a2 - b2; WG_DM(11) = -b2;       \
        WG_DM(12) = a3; WG_DM(13) = a3 + b3; WG_DM(14) = a3 - b3; WG_DM(15) = -b3;       \
    }                                                                                    \
}                                                                                        \
/* F(4x4, 3x3): dM (36 rows, stride ms) = A dY Aᵀ, e: the 4x4 dY tiles */                \
ATTR static void wg4_adjoint_##L##_##S(const T* restrict e, ptrdiff_t es, T* restrict dM, \
                                   ptrdiff_t ms, ptrdiff_t m) {                          \
    WG_IVDEP                                                                             \
    for (ptrdiff_t k = 0; k < m; k++) {                                                  \
        /* A dY: g<s><i> is entry i of column s */                                       \
        T g00, g01, g02, g03, g04, g05, g10, g11, g12, g13, g14, g15;                    \
        T g20, g21, g22, g23, g24, g25, g30, g31, g32, g33, g34, g35;                    \
        WG4_A(g00, g01, g02, g03, g04, g05, WG_E_##L(0), WG_E_##L(4), WG_E_##L(8), WG_E_##L(12)) \
        WG4_A(g10, g11, g12, g13, g14, g15, WG_E_##L(1), WG_E_##L(5), WG_E_##L(9), WG_E_##L(13)) \
        WG4_A(g20, g21, g22, g23, g24, g25, WG_E_##L(2), WG_E_##L(6), WG_E_##L(10), WG_E_##L(14)) \
        WG4_A(g30, g31, g32, g33, g34, g35, WG_E_##L(3), WG_E_##L(7), WG_E_##L(11), WG_E_##L(15)) \
        /* (A dY) Aᵀ: row i of dM from row i of A dY */                                  \
        WG4_A(WG_DM(0), WG_DM(1), WG_DM(2), WG_DM(3), WG_DM(4), WG_DM(5),                \
              g00, g10, g20, g30)                                                        \
        WG4_A(WG_DM(6), WG_DM(7), WG_DM(8), WG_DM(9), WG_DM(10), WG_DM(11),              \
              g01, g11, g21, g31)                                                        \
        WG4_A(WG_DM(12), WG_DM(13), WG_DM(14), WG_DM(15), WG_DM(16), WG_DM(17),          \
              g02, g12, g22, g32)                                                        \
        WG4_A(WG_DM(18), WG_DM(19), WG_DM(20), WG_DM(21), WG_DM(22), WG_DM(23),          \
              g03, g13, g23, g33)                                                        \
        WG4_A(WG_DM(24), WG_DM(25), WG_DM(26), WG_DM(27), WG_DM(28), WG_DM(29),          \
              g04, g14, g24, g34)                                                        \
        WG4_A(WG_DM(30), WG_DM(31), WG_DM(32), WG_DM(33), WG_DM(34), WG_DM(35),          \
              g05, g15, g25, g35)                                                        \
    }                                                                                    \
}                                                                                        \
/* F(4x4, 5x5): dM (64 rows, stride ms) = A dY Aᵀ, e: the 4x4 dY tiles */                \
ATTR static void wg45_adjoint_##L##_##S(const T* restrict e, ptrdiff_t es, T* restrict dM, \
                                    ptrdiff_t ms, ptrdiff_t m) {                         \
    typedef T wg_real;                                                                   \
    WG_IVDEP                                                                             \
    for (ptrdiff_t k = 0; k < m; k++) {                                                  \
        /* A dY: g<s><i> is entry i of column s */                                       \
        T g00, g01, g02, g03, g04, g05, g06, g07, g10, g11, g12, g13, g14, g15, g16,     \
          g17, g20, g21, g22, g23, g24, g25, g26, g27, g30, g31, g32, g33, g34, g35,     \
          g36, g37;                                                                      \
        WG45_A(g00, g01, g02, g03, g04, g05, g06, g07, WG_E_##L(0), WG_E_##L(4), WG_E_##L(8), \
               WG_E_##L(12))                                                             \
        WG45_A(g10, g11, g12, g13, g14, g15, g16, g17, WG_E_##L(1), WG_E_##L(5), WG_E_##L(9), \
               WG_E_##L(13))                                                             \
        WG45_A(g20, g21, g22, g23, g24, g25, g26, g27, WG_E_##L(2), WG_E_##L(6), WG_E_##L(10), \
               WG_E_##L(14))                                                             \
        WG45_A(g30, g31, g32, g33, g34, g35, g36, g37, WG_E_##L(3), WG_E_##L(7), WG_E_##L(11), \
               WG_E_##L(15))                                                             \
        /* (A dY) Aᵀ: row i of dM from row i of A dY */                                  \
        WG45_A(WG_DM(0), WG_DM(1), WG_DM(2), WG_DM(3), WG_DM(4), WG_DM(5), WG_DM(6),     \
               WG_DM(7), g00, g10, g20, g30)                                             \
        WG45_A(WG_DM(8), WG_DM(9), WG_DM(10), WG_DM(11), WG_DM(12), WG_DM(13),           \
               WG_DM(14), WG_DM(15), g01, g11, g21, g31)                                 \
        WG45_A(WG_DM(16), WG_DM(17), WG_DM(18), WG_DM(19), WG_DM(20), WG_DM(21),         \
               WG_DM(22), WG_DM(23), g02, g12, g22, g32)                                 \
        WG45_A(WG_DM(24), WG_DM(25), WG_DM(26), WG_DM(27), WG_DM(28), WG_DM(29),         \
               WG_DM(30), WG_DM(31), g03, g13, g23, g33)                                 \
        WG45_A(WG_DM(32), WG_DM(33), WG_DM(34), WG_DM(35), WG_DM(36), WG_DM(37),         \
               WG_DM(38), WG_DM(39), g04, g14, g24, g34)                                 \
        WG45_A(WG_DM(40), WG_DM(41), WG_DM(42), WG_DM(43), WG_DM(44), WG_DM(45),         \
               WG_DM(46), WG_DM(47), g05, g15, g25, g35)                                 \
        WG45_A(WG_DM(48), WG_DM(49), WG_DM(50), WG_DM(51), WG_DM(52), WG_DM(53),         \
               WG_DM(54), WG_DM(55), g06, g16, g26, g36)                                 \
        WG45_A(WG_DM(56), WG_DM(57), WG_DM(58), WG_DM(59), WG_DM(60), WG_DM(61),         \
               WG_DM(62), WG_DM(63), g07, g17, g27, g37)                                 \
    }                                                                                    \
}


/* Each routine compiled three times: for the baseline instruction set, AVX2 + FMA and
 * AVX-512 (the target attribute; the rest of the package keeps the baseline), picked at
 * run time by wg_level (AVX-512 against AVX2: benchmarks/conv_dispatch.md).  FMA
 * contraction may round
 * differently from the baseline: results can differ between CPUs, never between runs
 * or thread counts on one. */
#define MINIDL_WINOGRAD_ALL(T, S, ATTR)                                                  \
    MINIDL_WINOGRAD_ARITH(T, S, ATTR)                                                    \
    MINIDL_WINOGRAD_GATHERED(T, S, tiles, ATTR)                                          \
    MINIDL_WINOGRAD_GATHERED(T, S, rows, ATTR)
MINIDL_WINOGRAD_ALL(float, f_base, )
MINIDL_WINOGRAD_ALL(double, d_base, )

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define WG_X86 1
MINIDL_WINOGRAD_ALL(float, f_avx2, __attribute__((target("avx2,fma"))))
MINIDL_WINOGRAD_ALL(double, d_avx2, __attribute__((target("avx2,fma"))))
MINIDL_WINOGRAD_ALL(float, f_avx512, __attribute__((target("avx512f,avx2,fma"))))
MINIDL_WINOGRAD_ALL(double, d_avx512, __attribute__((target("avx512f,avx2,fma"))))

#include <immintrin.h>
#include "vector_helpers.h"
/* Lane j's offset j * stride, for a 16-lane gather (15 * stride must fit an int32). */
__attribute__((target("avx512f"))) static inline __m512i wg_lane_offsets(ptrdiff_t stride)
{
    return _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32((int)stride));
}

/* The float AVX-512 copy with 16-lane gathers (gcc keeps the strided loads scalar). */
__attribute__((target("avx512f"))) static void
wg_gather_copy_f_avx512(const float* restrict src, ptrdiff_t stride, float* restrict dst,
                        ptrdiff_t n)
{
    ptrdiff_t j = 0;
    if (stride > 0 && stride <= (1 << 26)) {   /* 15 * stride fits the int32 indices */
        const __m512i idx = wg_lane_offsets(stride);
        for (; j + 16 <= n; j += 16)
            _mm512_storeu_ps(dst + j, _mm512_i32gather_ps(idx, src + j * stride, 4));
    }
    for (; j < n; j++)
        dst[j] = src[j * stride];
}

/* Position-major patches: d[(i*a + s)*ds + k] = entry (i, s) of tile k's patch of the
 * plane at src, for tiles k < m, a <= 8; tile k's wg_patch at ``patches`` + k*stride
 * bytes.  Row i of 16 tiles is read as 16 masked short rows (8 lanes) and transposed in
 * registers, two 8x8 transposes side by side, into ``a`` vectors of 16 tiles: a few
 * shuffles per value, no copy of the planes into padded ones, no gather. */
__attribute__((target("avx512f"))) static void
wg_load_patches_f_avx512(const float* src, const char* patches, ptrdiff_t stride,
                         ptrdiff_t pitch, int a, float* restrict d, ptrdiff_t ds, ptrdiff_t m)
{
    /* lanes 0-3 of x then of y, lanes 8-11 of x then of y; and the next four of each */
    const __m512i first = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19,
                                            8, 9, 10, 11, 24, 25, 26, 27);
    const __m512i second = _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23,
                                             12, 13, 14, 15, 28, 29, 30, 31);
    for (ptrdiff_t k = 0; k < m; k += 16) {
        const ptrdiff_t n = m - k >= 16 ? 16 : m - k;
        const __mmask16 lanes = minidl_lanes16(n);
        const wg_patch* pt[16];
        for (int t = 0; t < 16; t++)   /* missing tiles repeat the last one */
            pt[t] = (const wg_patch*)(patches + (k + (t < n ? t : n - 1)) * stride);
        for (int i = 0; i < a; i++) {
            __m512 z[8], u[8];
            for (int j = 0; j < 8; j++) {   /* lanes 0-7: tile j's row i, 8-15: tile j+8's */
                const wg_patch* p = pt[j];
                const wg_patch* q = pt[j + 8];
                const __mmask16 pm = (__mmask16)p->rows[i];
                const __mmask16 qm = (__mmask16)(q->rows[i] << 8);
                z[j] = _mm512_mask_loadu_ps(_mm512_maskz_loadu_ps(pm, src + p->off + i * pitch),
                                            qm, src + q->off + i * pitch - 8);
            }
            minidl_transpose_4x4_blocks(z, u, 8);
            for (int s = 0; s < a; s++) {   /* column s of the 16 rows */
                const __m512 col = _mm512_permutex2var_ps(u[s & 3], s < 4 ? first : second,
                                                          u[4 + (s & 3)]);
                _mm512_mask_storeu_ps(d + (i * a + s) * ds + k, lanes, col);
            }
        }
    }
}

/* The weight transform U = G g Gᵀ (a x a from k x k, G (a, k) row-major), 16 kernels
 * per vector: U[ξ*us + r*S + s] for r < R, s < S, kernel (r, s)'s entry (i, j) at
 * w[r*wr + s*ws + i*wi + j*wj].  The strides read the weight as the forward's (F, C),
 * its transpose or its rotation in place (no copy); s is gathered (15 * ws fits an
 * int32: the caller checks). */
__attribute__((target("avx512f"), always_inline)) static inline void
wg_weight_gather_f_ak(const float* w, ptrdiff_t wr, ptrdiff_t ws, ptrdiff_t wi, ptrdiff_t wj,
                      int R, int S, const float* G, float* U, ptrdiff_t us, const int a,
                      const int k)
{
    const __m512i idx = wg_lane_offsets(ws);
    for (int r = 0; r < R; r++) {
        for (int s0 = 0; s0 < S; s0 += 16) {
            const __mmask16 lanes = minidl_lanes16(S - s0);
            const float* src = w + r * wr + s0 * ws;
            float* out = U + (ptrdiff_t)r * S + s0;
            __m512 g[25], t[40];
            for (int i = 0; i < k; i++)
                for (int j = 0; j < k; j++)
                    g[i * k + j] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), lanes, idx,
                                                            src + i * wi + j * wj, 4);
            for (int u = 0; u < a; u++)   /* t = G g (a x k) */
                for (int j = 0; j < k; j++) {
                    __m512 acc = _mm512_mul_ps(_mm512_set1_ps(G[u * k]), g[j]);
                    for (int i = 1; i < k; i++)
                        acc = _mm512_fmadd_ps(_mm512_set1_ps(G[u * k + i]), g[i * k + j], acc);
                    t[u * k + j] = acc;
                }
            for (int u = 0; u < a; u++)   /* U = t Gᵀ (a x a) */
                for (int v = 0; v < a; v++) {
                    __m512 acc = _mm512_mul_ps(t[u * k], _mm512_set1_ps(G[v * k]));
                    for (int j = 1; j < k; j++)
                        acc = _mm512_fmadd_ps(t[u * k + j], _mm512_set1_ps(G[v * k + j]), acc);
                    _mm512_mask_storeu_ps(out + (u * a + v) * us, lanes, acc);
                }
        }
    }
}

__attribute__((target("avx512f"))) static void
wg_weight_gather_f_avx512(const float* w, ptrdiff_t wr, ptrdiff_t ws, ptrdiff_t wi,
                          ptrdiff_t wj, int R, int S, const float* G, int a, float* U,
                          ptrdiff_t us)
{
    if (a == 4)
        wg_weight_gather_f_ak(w, wr, ws, wi, wj, R, S, G, U, us, 4, 3);
    else if (a == 6)
        wg_weight_gather_f_ak(w, wr, ws, wi, wj, R, S, G, U, us, 6, 3);
    else
        wg_weight_gather_f_ak(w, wr, ws, wi, wj, R, S, G, U, us, 8, 5);
}

/* The variant the routines run, set once by wg_select_level (module import) from the
   kernels' common level (cpu_level in _helpers.pxd) */
static int wg_level = 0;
static int wg_select_level(int level)
{
    wg_level = level;
    return wg_level;
}
#define WG_CALL(name, S, args)                                                           \
    do { if (wg_level == MINIDL_CPU_AVX512) name##_##S##_avx512 args;                    \
         else if (wg_level == MINIDL_CPU_AVX2) name##_##S##_avx2 args;                   \
         else name##_##S##_base args; } while (0)
#else
static int wg_select_level(int level) { (void)level; return 0; }
#define WG_CALL(name, S, args) name##_##S##_base args
#endif

/* The entry points _winograd.pyx calls, per type: by the patch side a (4: F(2x2, 3x3), 6:
 * F(4x4, 3x3), 8: F(4x4, 5x5)) and, for the gathered data, the layout (row stride ds or
 * es 0: ``tiles``, else ``rows``). */
#define WG_BY_SIDE(a, name, layout, S, args)                                             \
    do { if ((a) == 4) WG_CALL(wg2_##name##layout, S, args);                             \
         else if ((a) == 6) WG_CALL(wg4_##name##layout, S, args);                        \
         else WG_CALL(wg45_##name##layout, S, args); } while (0)
#define WG_ENTRY(T, S)                                                                   \
static void wg_input_##S(int a, const T* d, ptrdiff_t ds, T* v, ptrdiff_t vs, ptrdiff_t m) \
{                                                                                        \
    if (ds) WG_BY_SIDE(a, input_, rows, S, (d, ds, v, vs, m));                           \
    else WG_BY_SIDE(a, input_, tiles, S, (d, ds, v, vs, m));                             \
}                                                                                        \
static void wg_output_##S(int a, const T* M, ptrdiff_t ms, T b, T* o, ptrdiff_t m)       \
{ WG_BY_SIDE(a, output_, arith, S, (M, ms, b, o, m)); }                                  \
static void wg_adjoint_##S(int a, const T* e, ptrdiff_t es, T* dM, ptrdiff_t ms,         \
                           ptrdiff_t m)                                                  \
{                                                                                        \
    if (es) WG_BY_SIDE(a, adjoint_, rows, S, (e, es, dM, ms, m));                        \
    else WG_BY_SIDE(a, adjoint_, tiles, S, (e, es, dM, ms, m));                          \
}
WG_ENTRY(float, f)
WG_ENTRY(double, d)

/* dst[j] = src[j * stride] for j < n: one position of every sample's plane, for planes
 * copied transposed (float32 on AVX-512: 16-lane gathers). */
static void wg_strided_copy_d(const double* src, ptrdiff_t stride, double* dst, ptrdiff_t n)
{
    for (ptrdiff_t j = 0; j < n; j++)
        dst[j] = src[j * stride];
}
static void wg_strided_copy_f(const float* src, ptrdiff_t stride, float* dst, ptrdiff_t n)
{
#ifdef WG_X86
    if (wg_level == MINIDL_CPU_AVX512) {
        wg_gather_copy_f_avx512(src, stride, dst, n);
        return;
    }
#endif
    for (ptrdiff_t j = 0; j < n; j++)
        dst[j] = src[j * stride];
}

/* 1 where wg_load_patches_f runs (float32 on AVX-512): the patches are then loaded
   position-major straight from the planes, else gathered tile-major with row copies. */
static int wg_loads_patches(void)
{
#ifdef WG_X86
    return wg_level == MINIDL_CPU_AVX512;
#else
    return 0;
#endif
}
static void wg_load_patches_f(const float* src, const char* patches, ptrdiff_t stride,
                              ptrdiff_t pitch, int a, float* d, ptrdiff_t ds, ptrdiff_t m)
{
#ifdef WG_X86
    wg_load_patches_f_avx512(src, patches, stride, pitch, a, d, ds, m);
#else
    (void)src; (void)patches; (void)stride; (void)pitch; (void)a; (void)d; (void)ds; (void)m;
#endif
}


/* The gathered weight transform (float32, AVX-512 only: callers check wg_loads_patches);
   a = 4, 6: k = 3, a = 8: k = 5. */
static void wg_weight_gather_f(const float* w, ptrdiff_t wr, ptrdiff_t ws, ptrdiff_t wi,
                               ptrdiff_t wj, int R, int S, const float* G, int a, float* U,
                               ptrdiff_t us)
{
#ifdef WG_X86
    wg_weight_gather_f_avx512(w, wr, ws, wi, wj, R, S, G, a, U, us);
#else
    (void)w; (void)wr; (void)ws; (void)wi; (void)wj; (void)R; (void)S; (void)G; (void)a;
    (void)U; (void)us;
#endif
}

#endif
