/* The body of winograd_cm.h, compiled once per instruction set level: the vector type
 * and operations are that file's CM_* macros (CM_VW channels or filters a vector). */

/* v[ξ*vs + t*vt + c] = (Bᵀ d B)[ξ] of x's plane (t, c): see wg_cm_input_f. */
__attribute__((target(CM_TARGET))) static void
CM_NAME(wg_cm_input_f)(const float* x, const unsigned char* codes, int C, ptrdiff_t m,
                       float* v, ptrdiff_t vs, ptrdiff_t vt)
{
    const CMV z = CM_ZERO();
    for (ptrdiff_t t = 0; t < m; t++) {
        for (int c0 = 0; c0 < C; c0 += CM_VW) {
            const int n = C - c0 < CM_VW ? C - c0 : CM_VW;
            float* out = v + t * vt + c0;
            CMV d[16], c[36], w[36];
            CM_READ_PLANES(x, codes, t * C + c0, n, d);   /* d[4i + j]: entry (i, j) */
            /* Bᵀ d, column s of the 6x6 patch (rows 0 and 5 are the zero border) */
            for (int s = 0; s < 6; s++) {
                const CMV d1 = s >= 1 && s <= 4 ? d[s - 1] : z;
                const CMV d2 = s >= 1 && s <= 4 ? d[4 + s - 1] : z;
                const CMV d3 = s >= 1 && s <= 4 ? d[8 + s - 1] : z;
                const CMV d4 = s >= 1 && s <= 4 ? d[12 + s - 1] : z;
                WG4_BT(c[6 * s], c[6 * s + 1], c[6 * s + 2], c[6 * s + 3], c[6 * s + 4],
                       c[6 * s + 5], z, d1, d2, d3, d4, z)
            }
            /* (Bᵀ d) B: row i of V from row i of Bᵀ d */
            for (int i = 0; i < 6; i++) {
                WG4_BT(w[6 * i], w[6 * i + 1], w[6 * i + 2], w[6 * i + 3], w[6 * i + 4],
                       w[6 * i + 5], c[i], c[6 + i], c[12 + i], c[18 + i], c[24 + i],
                       c[30 + i])
            }
            for (int xi = 0; xi < 36; xi++)
                CM_STORE(out + xi * vs, n, w[xi]);
        }
    }
}

/* o[4i + j] = output (i, j) of Aᵀ M A + bias for the n filters in use (zero lanes past
 * them), M's 36 positions at src + ξ*ms, bias (NULL: none) at bias. */
static inline __attribute__((always_inline, target(CM_TARGET))) void
CM_NAME(wg_cm_output_tile)(const float* src, ptrdiff_t ms, const float* bias, int n,
                           CMV o[16])
{
    const CMV b = bias ? CM_LOAD(n, bias) : CM_ZERO();
    CMV q[36], u[24];
    for (int xi = 0; xi < 36; xi++)
        q[xi] = CM_LOAD(n, src + xi * ms);
    /* Aᵀ M: u[4s + i] is entry i of column s */
    for (int s = 0; s < 6; s++) {
        WG4_AT(u[4 * s], u[4 * s + 1], u[4 * s + 2], u[4 * s + 3], q[s], q[6 + s],
               q[12 + s], q[18 + s], q[24 + s], q[30 + s], )
    }
    /* (Aᵀ M) A + b: output row i from row i of Aᵀ M */
    for (int i = 0; i < 4; i++) {
        WG4_AT(o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3], u[i], u[4 + i], u[8 + i],
               u[12 + i], u[16 + i], u[20 + i], + b)
    }
}

/* y (m, F, 4, 4) = Aᵀ M A + bias: see wg_cm_output_f. */
__attribute__((target(CM_TARGET))) static void
CM_NAME(wg_cm_output_f)(const float* M, ptrdiff_t ms, ptrdiff_t mt, const float* bias,
                        float* y, int F, ptrdiff_t m)
{
    for (ptrdiff_t t = 0; t < m; t++) {
        for (int f0 = 0; f0 < F; f0 += CM_VW) {
            const int n = F - f0 < CM_VW ? F - f0 : CM_VW;
            CMV o[16];
            CM_NAME(wg_cm_output_tile)(M + t * mt + f0, ms, bias ? bias + f0 : NULL, n, o);
            CM_WRITE_PLANES(y + (t * F + f0) * 16, n, o);
        }
    }
}

/* yp (m, F, 2, 2), the 2x2 max pool (and ReLU) of Aᵀ M A + bias: see
 * wg_cm_output_pool_f. */
__attribute__((target(CM_TARGET))) static int
CM_NAME(wg_cm_output_pool_f)(const float* M, ptrdiff_t ms, ptrdiff_t mt, const float* bias,
                             float* yp, unsigned char* codes, int F, ptrdiff_t m, int relu)
{
    const CMV z = CM_ZERO();
    CMM nan = CM_MNONE();
    for (ptrdiff_t t = 0; t < m; t++) {
        for (int f0 = 0; f0 < F; f0 += CM_VW) {
            const int n = F - f0 < CM_VW ? F - f0 : CM_VW;
            CMV o[16], r[4], c[4];
            CM_NAME(wg_cm_output_tile)(M + t * mt + f0, ms, bias ? bias + f0 : NULL, n, o);
            /* o[4i + j]: output (i, j) of the filters; window k = 2 pi + pj takes
             * (2pi, 2pj), (2pi, 2pj + 1), (2pi + 1, 2pj), (2pi + 1, 2pj + 1) in that order
             * and keeps the first maximum, as the 2x2 pool */
            for (int k = 0; k < 4; k++) {
                const int top = 8 * (k >> 1) + 2 * (k & 1);
                const CMV v[4] = {o[top], o[top + 1], o[top + 4], o[top + 5]};
                CMV best = v[0];
                CMI code = CM_IZERO();
                for (int e = 0; e < 4; e++)
                    nan = CM_MOR(nan, CM_UNORD(v[e], v[e]));
                for (int e = 1; e < 4; e++) {
                    const CMM gt = CM_GT(v[e], best);
                    best = CM_BLEND(gt, best, v[e]);
                    code = CM_IBLEND(gt, code, CM_ISET1(e));
                }
                if (relu) {
                    const CMM pos = CM_GT(best, z);
                    best = CM_MASKZ(pos, best);
                    code = CM_IBLEND(pos, CM_ISET1(4), code);
                }
                r[k] = best;
                c[k] = CM_ITOF(code);
            }
            CM_WRITE_WINDOWS(yp + (t * F + f0) * 4, n, r, 0);
            if (codes)
                CM_WRITE_WINDOWS(codes + (t * F + f0) * 4, n, c, 1);
        }
    }
    return CM_MANY(nan);
}

/* dM[ξ*ms + t*F + f] = (A dY Aᵀ)[ξ] of dy's plane (t, f), db += the planes' sums: see
 * wg_cm_adjoint_f. */
__attribute__((target(CM_TARGET))) static void
CM_NAME(wg_cm_adjoint_f)(const float* dy, const unsigned char* codes, int F, ptrdiff_t m,
                         float* dM, ptrdiff_t ms, double* db)
{
    for (ptrdiff_t t = 0; t < m; t++) {
        for (int f0 = 0; f0 < F; f0 += CM_VW) {
            const int n = F - f0 < CM_VW ? F - f0 : CM_VW;
            float* out = dM + t * F + f0;
            CMV e[16], g[24], w[36];
            CM_READ_PLANES(dy, codes, t * F + f0, n, e);   /* e[4i + j]: entry (i, j) */
            if (db) {
                CMV s8[8], s4[4];
                float sum[CM_VW];
                for (int j = 0; j < 8; j++) s8[j] = e[j] + e[j + 8];
                for (int j = 0; j < 4; j++) s4[j] = s8[j] + s8[j + 4];
                CM_STORE_ALL(sum, (s4[0] + s4[2]) + (s4[1] + s4[3]));
                for (int j = 0; j < n; j++) db[f0 + j] += sum[j];
            }
            /* A dY: g[6s + i] is entry i of column s */
            for (int s = 0; s < 4; s++) {
                WG4_A(g[6 * s], g[6 * s + 1], g[6 * s + 2], g[6 * s + 3], g[6 * s + 4],
                      g[6 * s + 5], e[s], e[4 + s], e[8 + s], e[12 + s])
            }
            /* (A dY) Aᵀ: row i of dM from row i of A dY */
            for (int i = 0; i < 6; i++) {
                WG4_A(w[6 * i], w[6 * i + 1], w[6 * i + 2], w[6 * i + 3], w[6 * i + 4],
                      w[6 * i + 5], g[i], g[6 + i], g[12 + i], g[18 + i])
            }
            for (int xi = 0; xi < 36; xi++)
                CM_STORE(out + xi * ms, n, w[xi]);
        }
    }
}

/* Rows 0 .. rows - 1 of C, columns 0 .. n0 + n1 - 1 (two vectors, n0 and n1 lanes in
 * use; ``full``: both whole): see wg_cm_gemm.  Inlined only into the variants below,
 * each its own function with constant rows, full and trans_a, so that the accumulators
 * and the few pointers stay in registers. */
static inline __attribute__((always_inline, target(CM_TARGET))) void
CM_NAME(wg_cm_gemm_block)(int k, const float* a, ptrdiff_t lda, const int trans_a,
                          const float* b, ptrdiff_t ldb, float* c, ptrdiff_t ldc,
                          int accumulate, int n0, int n1, const int rows, const int full)
{
    CMV acc0[CM_GEMM_ROWS], acc1[CM_GEMM_ROWS];
    for (int r = 0; r < rows; r++)
        acc0[r] = acc1[r] = CM_ZERO();
    for (int l = 0; l < k; l++) {
        const float* bl = b + l * ldb;
        const float* al = trans_a ? a + l * lda : a + l;   /* A's column l */
        const CMV b0 = full ? CM_LOADU(bl) : CM_LOAD(n0, bl);
        const CMV b1 = full ? CM_LOADU(bl + CM_VW) : CM_LOAD(n1, bl + CM_VW);
        for (int r = 0; r < rows; r++) {
            const CMV av = CM_SET1(trans_a ? al[r] : al[r * lda]);
            acc0[r] = CM_FMA(av, b0, acc0[r]);
            acc1[r] = CM_FMA(av, b1, acc1[r]);
        }
    }
    for (int r = 0; r < rows; r++) {
        float* cr = c + r * ldc;
        if (accumulate) {
            acc0[r] += full ? CM_LOADU(cr) : CM_LOAD(n0, cr);
            acc1[r] += full ? CM_LOADU(cr + CM_VW) : CM_LOAD(n1, cr + CM_VW);
        }
        if (full) {
            CM_STOREU(cr, acc0[r]);
            CM_STOREU(cr + CM_VW, acc1[r]);
        } else {
            CM_STORE(cr, n0, acc0[r]);
            if (n1 > 0)
                CM_STORE(cr + CM_VW, n1, acc1[r]);
        }
    }
}

/* A block of rows of C across all n columns: whole pairs of vectors, then a part. */
#define CM_GEMM_VARIANT(suffix, rows, trans_a)                                           \
    static __attribute__((noinline, target(CM_TARGET))) void                             \
    CM_NAME(wg_cm_gemm_##suffix)(int n, int k, const float* a, ptrdiff_t lda,            \
                                 const float* b, ptrdiff_t ldb, float* c, ptrdiff_t ldc, \
                                 int accumulate)                                         \
    {                                                                                    \
        int j = 0;                                                                       \
        for (; j + 2 * CM_VW <= n; j += 2 * CM_VW)                                       \
            CM_NAME(wg_cm_gemm_block)(k, a, lda, trans_a, b + j, ldb, c + j, ldc,        \
                                      accumulate, CM_VW, CM_VW, rows, 1);                \
        if (j < n) {                                                                     \
            const int n0 = n - j < CM_VW ? n - j : CM_VW;                                \
            CM_NAME(wg_cm_gemm_block)(k, a, lda, trans_a, b + j, ldb, c + j, ldc,        \
                                      accumulate, n0, n - j - n0, rows, 0);              \
        }                                                                                \
    }
CM_GEMM_VARIANT(rows, CM_GEMM_ROWS, 0)
CM_GEMM_VARIANT(row, 1, 0)
CM_GEMM_VARIANT(rows_t, CM_GEMM_ROWS, 1)
CM_GEMM_VARIANT(row_t, 1, 1)
#undef CM_GEMM_VARIANT

/* C (m, n) = op(A) (m, k) @ B (k, n), plus C's own values where ``accumulate``; row-major
 * with row strides lda, ldb, ldc, op(A) = A, or Aᵀ where ``trans_a`` (as _helpers.gemm's
 * transa).  Each entry sums its k products in order, one FMA each, then adds C's value.
 * Blocks of CM_GEMM_ROWS rows, then the rows left one at a time. */
__attribute__((target(CM_TARGET))) static void
CM_NAME(wg_cm_gemm)(int trans_a, int m, int n, int k, const float* a, ptrdiff_t lda,
                    const float* b, ptrdiff_t ldb, float* c, ptrdiff_t ldc, int accumulate)
{
    for (int i = 0; i < m;) {
        const int rows = m - i >= CM_GEMM_ROWS ? CM_GEMM_ROWS : 1;
        const float* ai = trans_a ? a + i : a + i * lda;   /* op(A)'s row i */
        float* ci = c + i * ldc;
        if (trans_a)
            rows > 1 ? CM_NAME(wg_cm_gemm_rows_t)(n, k, ai, lda, b, ldb, ci, ldc, accumulate)
                     : CM_NAME(wg_cm_gemm_row_t)(n, k, ai, lda, b, ldb, ci, ldc, accumulate);
        else
            rows > 1 ? CM_NAME(wg_cm_gemm_rows)(n, k, ai, lda, b, ldb, ci, ldc, accumulate)
                     : CM_NAME(wg_cm_gemm_row)(n, k, ai, lda, b, ldb, ci, ldc, accumulate);
        i += rows;
    }
}

#undef CM_VW
#undef CM_NAME
#undef CM_TARGET
#undef CMV
#undef CMI
#undef CMM
#undef CM_ZERO
#undef CM_IZERO
#undef CM_ISET1
#undef CM_LOAD
#undef CM_LOADU
#undef CM_STOREU
#undef CM_SET1
#undef CM_FMA
#undef CM_GEMM_ROWS
#undef CM_STORE
#undef CM_STORE_ALL
#undef CM_GT
#undef CM_UNORD
#undef CM_MOR
#undef CM_MNONE
#undef CM_MANY
#undef CM_BLEND
#undef CM_IBLEND
#undef CM_MASKZ
#undef CM_ITOF
#undef CM_READ_PLANES
#undef CM_WRITE_PLANES
#undef CM_WRITE_WINDOWS
