/* The body of direct_conv_c1_pool.h, compiled once per instruction set level: the
 * vector type and operations are that file's C1_* macros (C1_VW floats a vector, and
 * as many windows a transposed block). */

/* Sample n's pooled planes yn (F, Ho/2, Wo/2) and codes cn (or NULL) from its padded
 * plane xs (Hp, Wp); kh, kw and with_codes constants where inlined, so that the tap
 * loops unroll, the weights and a window's input values stay in registers, and no_grad
 * computes no codes.  Without codes and with a finite bias, the bias is added after the
 * pool: rounding x + b is monotonic in x, so the maximum is the same value (only its
 * position may differ, which nothing reads then), and x86's max takes the second
 * operand on ties and signed zeros, as the pool's "strictly larger" selects do. */
static inline __attribute__((always_inline, target(C1_TARGET))) int
C1_NAME(c1_conv_pool_k)(const minidl_direct_geom* g, const float* xs, const float* wt,
                        const float* bias, int relu, float* yn, uint8_t* cn, const int kh,
                        const int kw, const int with_codes, const int bias_after)
{
    const int Wp = g->Wp, Qo = g->Wo / 2, F = g->F, fpad = g->fpad;
    const ptrdiff_t P = (ptrdiff_t)(g->Ho / 2) * Qo;
    const C1V zero = C1_ZERO();
    const C1I one = C1_ISET1(1), two = C1_ISET1(2), three = C1_ISET1(3), four = C1_ISET1(4);
    C1M nan = C1_MNONE();
    for (int f0 = 0; f0 < F; f0 += C1_VW) {
        const int nf = F - f0 < C1_VW ? F - f0 : C1_VW;
        const C1M fl = C1_LANES(nf);
        C1V w[MINIDL_C1_MAX_TAPS];
        for (int t = 0; t < kh * kw; t++)
            w[t] = C1_LOAD(fl, wt + (ptrdiff_t)t * fpad + f0);
        const C1V b = bias != NULL ? C1_LOAD(fl, bias + f0) : zero;
        int pr = 0, pc = 0;   /* the next window's row and column */
        for (ptrdiff_t p0 = 0; p0 < P; p0 += C1_VW) {
            const int m = P - p0 < C1_VW ? (int)(P - p0) : C1_VW;
            C1V r[C1_VW];
            C1I c[C1_VW];
            for (int j = 0; j < C1_VW; j++) {
                r[j] = zero;
                c[j] = C1_IZERO();
            }
            for (int j = 0; j < m; j++) {
                const float* s = xs + (ptrdiff_t)2 * pr * Wp + 2 * pc;
                /* the window's (kh+1) x (kw+1) input values, each broadcast once */
                C1V px[MINIDL_C1_MAX_PIXELS];
                for (int i = 0; i <= kh; i++)
                    for (int t = 0; t <= kw; t++)
                        px[i * (kw + 1) + t] = C1_SET1(s[(ptrdiff_t)i * Wp + t]);
                C1V a0 = zero, a1 = zero, a2 = zero, a3 = zero;
                for (int kj = 0; kj < kw; kj++)
                    for (int ki = 0; ki < kh; ki++) {
                        const C1V* q = px + ki * (kw + 1) + kj;
                        const C1V wv = w[ki * kw + kj];
                        a0 = C1_FMA(q[0], wv, a0);
                        a1 = C1_FMA(q[1], wv, a1);
                        a2 = C1_FMA(q[kw + 1], wv, a2);
                        a3 = C1_FMA(q[kw + 2], wv, a3);
                    }
                if (!bias_after) {
                    a0 = C1_ADD(a0, b);
                    a1 = C1_ADD(a1, b);
                    a2 = C1_ADD(a2, b);
                    a3 = C1_ADD(a3, b);
                }
                nan = C1_MOR(nan, C1_MOR(C1_UNORD(a0, a1), C1_UNORD(a2, a3)));
                C1V v;
                C1I code = C1_IZERO();
                if (with_codes) {
                    const C1M right_top = C1_GT(a1, a0), right_bot = C1_GT(a3, a2);
                    const C1V top = C1_BLEND(right_top, a0, a1);
                    const C1V bot = C1_BLEND(right_bot, a2, a3);
                    const C1M down = C1_GT(bot, top);
                    v = C1_BLEND(down, top, bot);
                    code = C1_IBLEND(down, C1_IMASKZ(right_top, one),
                                     C1_IBLEND(right_bot, two, three));
                    if (relu) {   /* zero where not > 0 (no NaN gets here unnoticed), code 4 */
                        const C1M positive = C1_GT(v, zero);
                        v = C1_MASKZ(positive, v);
                        code = C1_IBLEND(positive, four, code);
                    }
                } else {
                    /* max(x, y) = x > y ? x : y: the right or bottom one if strictly larger */
                    v = C1_MAX(C1_MAX(a3, a2), C1_MAX(a1, a0));
                    if (bias_after)
                        v = C1_ADD(v, b);
                    if (relu)   /* v > 0 ? v : +0 */
                        v = C1_MAX(v, zero);
                }
                r[j] = v;
                c[j] = code;
                if (++pc == Qo) {
                    pc = 0;
                    pr++;
                }
            }
            C1_TRANSPOSE(r);   /* r[i]: filter f0 + i's m windows */
            for (int i = 0; i < nf; i++)
                C1_STORE(yn + (ptrdiff_t)(f0 + i) * P + p0, m, r[i]);
            if (with_codes) {
                C1V cf[C1_VW];
                for (int j = 0; j < C1_VW; j++)
                    cf[j] = C1_ITOF(c[j]);
                C1_TRANSPOSE(cf);
                for (int i = 0; i < nf; i++)
                    C1_STORE_CODES(cn + (ptrdiff_t)(f0 + i) * P + p0, m, cf[i]);
            }
        }
    }
    return C1_MANY(nan);
}

/* mode 0: values and codes; 1: values; 2: values, the bias added after the pool. */
#define C1_MODES(kh, kw)                                                                 \
    if (mode == 0)                                                                       \
        return C1_NAME(c1_conv_pool_k)(g, xs, wt, bias, relu, yn, cn, kh, kw, 1, 0);     \
    if (mode == 1)                                                                       \
        return C1_NAME(c1_conv_pool_k)(g, xs, wt, bias, relu, yn, cn, kh, kw, 0, 0);     \
    return C1_NAME(c1_conv_pool_k)(g, xs, wt, bias, relu, yn, cn, kh, kw, 0, 1);

__attribute__((target(C1_TARGET))) static int
C1_NAME(c1_conv_pool_3x3)(const minidl_direct_geom* g, const float* xs, const float* wt,
                          const float* bias, int relu, float* yn, uint8_t* cn, int mode)
{
    C1_MODES(3, 3)
}

__attribute__((target(C1_TARGET))) static int
C1_NAME(c1_conv_pool_5x5)(const minidl_direct_geom* g, const float* xs, const float* wt,
                          const float* bias, int relu, float* yn, uint8_t* cn, int mode)
{
    C1_MODES(5, 5)
}

__attribute__((target(C1_TARGET))) static int
C1_NAME(c1_conv_pool_any)(const minidl_direct_geom* g, const float* xs, const float* wt,
                          const float* bias, int relu, float* yn, uint8_t* cn, int mode)
{
    C1_MODES(g->kh, g->kw)
}
#undef C1_MODES

/* Samples n0:n1 at this level: minidl_direct_c1_pool's arguments, and mode as C1_MODES. */
__attribute__((target(C1_TARGET))) static int
C1_NAME(c1_pool_samples)(const minidl_direct_geom* g, const float* x, const float* wt,
                         const float* bias, int relu, float* y, uint8_t* codes, ptrdiff_t n0,
                         ptrdiff_t n1, float* xs, int mode)
{
    const ptrdiff_t out = (ptrdiff_t)g->F * (g->Ho / 2) * (g->Wo / 2);
    int nan = 0;
    for (ptrdiff_t n = n0; n < n1 && !nan; n++) {
        /* the general kernel's padding copy (direct_conv_impl.h) */
        C1_NAME(minidl_direct_pad_planes)(g, x + n * g->H * g->W, xs);
        uint8_t* cn = codes != NULL ? codes + n * out : NULL;
        if (g->kh == 3 && g->kw == 3)
            nan = C1_NAME(c1_conv_pool_3x3)(g, xs, wt, bias, relu, y + n * out, cn, mode);
        else if (g->kh == 5 && g->kw == 5)
            nan = C1_NAME(c1_conv_pool_5x5)(g, xs, wt, bias, relu, y + n * out, cn, mode);
        else
            nan = C1_NAME(c1_conv_pool_any)(g, xs, wt, bias, relu, y + n * out, cn, mode);
    }
    return nan;
}

#undef C1_VW
#undef C1_NAME
#undef C1_TARGET
#undef C1V
#undef C1I
#undef C1M
#undef C1_LANES
#undef C1_LOAD
#undef C1_SET1
#undef C1_ZERO
#undef C1_IZERO
#undef C1_ISET1
#undef C1_FMA
#undef C1_ADD
#undef C1_MAX
#undef C1_GT
#undef C1_UNORD
#undef C1_MOR
#undef C1_MNONE
#undef C1_MANY
#undef C1_BLEND
#undef C1_IBLEND
#undef C1_MASKZ
#undef C1_IMASKZ
#undef C1_TRANSPOSE
#undef C1_ITOF
#undef C1_STORE
#undef C1_STORE_CODES
