/* The C of max pooling (_pooling.pyx): the branch-free selects of the general kernel,
   and the 2x2 / stride 2 / no padding kernel with window codes, portable here and with
   its AVX-512 twin in max_pool_2x2_avx512.h, behind one entry point per type.

   The 2x2 kernel: ``rows`` output rows (wo each) from pairs of input rows (2*wo each;
   whole planes stacked when H is even).  code = the row-major position 0..3 of the
   window's first maximum.  Two passes without branches (a data-dependent branch
   mispredicts half the time on random data) and with constant trip counts for small
   widths, so that both vectorise.  Returns nonzero, with nothing valid written, if a
   NaN was seen (the caller then runs the general kernel, which lets NaN win as PyTorch
   does). */
#ifndef MINIDL_MAX_POOL_H
#define MINIDL_MAX_POOL_H
#include <stdint.h>
#include <string.h>
#include <Python.h>

#include "cpu_level.h"

/* The portable forward is built for AVX2 as well as the baseline: where the AVX-512
   paths do not run (other CPUs, other widths) it ran at four lanes.  (The backward's
   interleaved stores ran slower as AVX2.) */
#define MP_CLONES MINIDL_CLONES("avx2", "default")

/* "take ? a : b" on the bits (compilers turn a float select into a branch, which random
   data mispredicts half the time). */
static inline float minidl_select_f(int take, float a, float b)
{
    uint32_t x, y, m = (uint32_t)0 - (uint32_t)take;
    memcpy(&x, &a, 4);
    memcpy(&y, &b, 4);
    x = (x & m) | (y & ~m);
    memcpy(&a, &x, 4);
    return a;
}

static inline double minidl_select_d(int take, double a, double b)
{
    uint64_t x, y, m = (uint64_t)0 - (uint64_t)take;
    memcpy(&x, &a, 8);
    memcpy(&y, &b, 8);
    x = (x & m) | (y & ~m);
    memcpy(&a, &x, 8);
    return a;
}

static inline int64_t minidl_select_i(int take, int64_t a, int64_t b)
{
    uint64_t m = (uint64_t)0 - (uint64_t)take;
    return (int64_t)(((uint64_t)a & m) | ((uint64_t)b & ~m));
}

/* Pass 1, linear over the column pairs: hm = the larger of the pair, hs = 1 if the right
   one is strictly larger; pass 2, per output row: the bottom pair wins only if strictly
   larger.  want_codes = 0 (no_grad: nothing reads the codes): pass 1 without hs and a
   pass 2 of plain row-pair maxima (the top one on a tie), the same y about twice as
   fast; code untouched.  Scratch: hm and hs hold 2*rows*wo elements. */
#define MP_PASS2_CODES(T, WO)                                                            \
    for (r = 0; r < rows; r++, hm += 2 * (WO), hs += 2 * (WO), y += (WO), code += (WO)) \
        for (k = 0; k < (WO); k++) {                                                     \
            T a = hm[k], b = hm[(WO) + k];                                               \
            int32_t t = b > a;                                                           \
            y[k] = b > a ? b : a;                                                        \
            code[k] = (unsigned char)(hs[k] + t * (2 + hs[(WO) + k] - hs[k]));           \
        }
#define MP_PASS2_VALUES(T, WO)                                                           \
    for (r = 0; r < rows; r++, hm += 2 * (WO), y += (WO))                                \
        for (k = 0; k < (WO); k++)                                                       \
            y[k] = hm[(WO) + k] > hm[k] ? hm[(WO) + k] : hm[k];
#define MP_MAX_2X2(NAME, T)                                                              \
MP_CLONES static int NAME(const T* restrict x, T* restrict y,                           \
                          unsigned char* restrict code, Py_ssize_t rows, Py_ssize_t wo,  \
                          T* restrict hm, int32_t* restrict hs, int want_codes)          \
{                                                                                        \
    Py_ssize_t j, r, k, n_pairs = 2 * rows * wo;                                         \
    int nan_seen = 0;                                                                    \
    if (!want_codes) {                                                                   \
        for (j = 0; j < n_pairs; j++) {                                                  \
            T a = x[2 * j], b = x[2 * j + 1];                                            \
            nan_seen |= (a != a) | (b != b);                                             \
            hm[j] = b > a ? b : a;                                                       \
        }                                                                                \
        if (nan_seen)                                                                    \
            return 1;                                                                    \
        if (wo == 2) { MP_PASS2_VALUES(T, 2) }                                           \
        else if (wo == 4) { MP_PASS2_VALUES(T, 4) }                                      \
        else if (wo == 8) { MP_PASS2_VALUES(T, 8) }                                      \
        else { MP_PASS2_VALUES(T, wo) }                                                  \
        return 0;                                                                        \
    }                                                                                    \
    for (j = 0; j < n_pairs; j++) {                                                      \
        T a = x[2 * j], b = x[2 * j + 1];                                                \
        nan_seen |= (a != a) | (b != b);                                                 \
        hm[j] = b > a ? b : a;                                                           \
        hs[j] = b > a;                                                                   \
    }                                                                                    \
    if (nan_seen)                                                                        \
        return 1;                                                                        \
    if (wo == 2) { MP_PASS2_CODES(T, 2) }                                                \
    else if (wo == 4) { MP_PASS2_CODES(T, 4) }                                           \
    else { MP_PASS2_CODES(T, wo) }                                                       \
    return 0;                                                                            \
}
MP_MAX_2X2(mp_max_2x2_portable_f, float)
MP_MAX_2X2(mp_max_2x2_portable_d, double)

/* The backward: every input element written, the gradient (as 0 + g, what the
   flat-index backward's zero-fill-then-add gives) at the coded position and +0
   elsewhere, selected with bit masks so the loop vectorises. */
#define MP_BACKWARD_ROWS(T, U, WO)                                                       \
    for (r = 0; r < rows; r++, g += (WO), code += (WO), dx += 4 * (WO)) {                \
        T* bot = dx + 2 * (WO);                                                          \
        for (k = 0; k < (WO); k++) {                                                     \
            T v = (T)0 + g[k];                                                           \
            U bits, c = code[k], o;                                                      \
            memcpy(&bits, &v, sizeof(T));                                                \
            o = bits & ((U)0 - (U)(c == 0)); memcpy(dx + 2 * k, &o, sizeof(T));          \
            o = bits & ((U)0 - (U)(c == 1)); memcpy(dx + 2 * k + 1, &o, sizeof(T));      \
            o = bits & ((U)0 - (U)(c == 2)); memcpy(bot + 2 * k, &o, sizeof(T));         \
            o = bits & ((U)0 - (U)(c == 3)); memcpy(bot + 2 * k + 1, &o, sizeof(T));     \
        }                                                                                \
    }
#define MP_MAX_2X2_BACKWARD(NAME, T, U)                                                  \
static void NAME(const T* restrict g, const unsigned char* restrict code,                \
                 T* restrict dx, Py_ssize_t rows, Py_ssize_t wo)                         \
{                                                                                        \
    Py_ssize_t r, k;                                                                     \
    if (wo == 2) { MP_BACKWARD_ROWS(T, U, 2) }                                           \
    else if (wo == 4) { MP_BACKWARD_ROWS(T, U, 4) }                                      \
    else { MP_BACKWARD_ROWS(T, U, wo) }                                                  \
}
MP_MAX_2X2_BACKWARD(mp_max_2x2_backward_portable_f, float, uint32_t)
MP_MAX_2X2_BACKWARD(mp_max_2x2_backward_portable_d, double, uint64_t)

/* y = relu(y) (a NaN stays), and code 4 where y is not > 0 (NaN too): the backward
   then writes zeros there, as ReLU's gradient mask (y > 0) gives.  Selects, not
   branches: random signs would mispredict half the time. */
#define MP_RELU_CODES(NAME, T)                                                           \
static inline void NAME(T* restrict y, unsigned char* restrict code, Py_ssize_t n)              \
{                                                                                        \
    Py_ssize_t k;                                                                        \
    for (k = 0; k < n; k++) {                                                            \
        T v = y[k];                                                                      \
        int positive = v > 0;                                                            \
        y[k] = (positive | (v != v)) ? v : (T)0;                                         \
        code[k] = positive ? code[k] : (unsigned char)4;                                 \
    }                                                                                    \
}
MP_RELU_CODES(mp_relu_codes_portable_f, float)
MP_RELU_CODES(minidl_relu_codes_d, double)

#include "max_pool_2x2_avx512.h"

static inline void minidl_relu_codes_f(float* y, unsigned char* code, Py_ssize_t n)
{
#if MP_HAVE_AVX512
    if (mp_level) {
        mp_relu_codes_avx512(y, code, n);
        return;
    }
#endif
    mp_relu_codes_portable_f(y, code, n);
}

/* The entry points _pooling.pyx calls: the AVX-512 path where the CPU, the level and the
   width allow it (float32; it writes the codes whatever want_codes says, and is faster
   than the portable values-only pass), else the portable C. */
static inline int minidl_max_2x2_f(const float* x, float* y, unsigned char* code, Py_ssize_t rows,
                            Py_ssize_t wo, float* hm, int32_t* hs, int want_codes)
{
#if MP_HAVE_AVX512
    if (mp_runs(wo))
        return mp_max_2x2_avx512(x, y, code, rows, wo, hm, hs);
#endif
    return mp_max_2x2_portable_f(x, y, code, rows, wo, hm, hs, want_codes);
}

static inline int minidl_max_2x2_d(const double* x, double* y, unsigned char* code, Py_ssize_t rows,
                            Py_ssize_t wo, double* hm, int32_t* hs, int want_codes)
{
    return mp_max_2x2_portable_d(x, y, code, rows, wo, hm, hs, want_codes);
}

static inline void minidl_max_2x2_backward_f(const float* g, const unsigned char* code, float* dx,
                                      Py_ssize_t rows, Py_ssize_t wo)
{
#if MP_HAVE_AVX512
    if (mp_runs(wo)) {
        mp_max_2x2_backward_avx512(g, code, dx, rows, wo);
        return;
    }
#endif
    mp_max_2x2_backward_portable_f(g, code, dx, rows, wo);
}

static inline void minidl_max_2x2_backward_d(const double* g, const unsigned char* code, double* dx,
                                      Py_ssize_t rows, Py_ssize_t wo)
{
    mp_max_2x2_backward_portable_d(g, code, dx, rows, wo);
}

#endif
