/* The body of direct_conv.h, compiled once per instruction set level.
 *
 * Parameters (macros): DC_SUFFIX (name suffix), DC_TARGET (the target attribute),
 * DC_VW (floats a vector), and the register blocks DC_FB x DC_VB (forward: filters x
 * output vectors), DC_CB x DC_IVB (input grad: channels x position vectors), DC_WF x
 * DC_WT (weight grad: filters x taps).  Geometry and scratch layouts: direct_conv.h. */

#define DC_CAT2(a, b) a##_##b
#define DC_CAT(a, b) DC_CAT2(a, b)
#define DC_NAME(name) DC_CAT(minidl_direct_##name, DC_SUFFIX)

/* x[n] (C, H, W) -> the zero-padded planes xs (C, Hp, Wp; borders zeroed by the caller,
 * once). */
static void DC_NAME(pad_planes)(const minidl_direct_geom* g, const float* xn, float* xs)
{
    const int C = g->C, H = g->H, W = g->W, Wp = g->Wp;
    const ptrdiff_t plane = g->plane;
    int c, h;
    for (c = 0; c < C; c++) {
        if (g->pw == 0)     /* the padded rows are the input's rows: one copy a plane */
            memcpy(xs + c * plane + (ptrdiff_t)g->ph * Wp, xn + (ptrdiff_t)c * H * W,
                   sizeof(float) * (size_t)H * W);
        else
            for (h = 0; h < H; h++)
                memcpy(xs + c * plane + (ptrdiff_t)(h + g->ph) * Wp + g->pw,
                       xn + ((ptrdiff_t)c * H + h) * W, sizeof(float) * (size_t)W);
    }
}

/* The padded planes xs -> the column-shifted planes cols[(kj*C + c)*col_stride + h*Wo +
 * ow] = xs[c, h, ow + kj].  Rows are copied as whole vectors, each spilling into the next
 * row (rewritten after it) or, for the last, into the plane's slack. */
__attribute__((target(DC_TARGET), noinline))
static void DC_NAME(shift_columns)(const minidl_direct_geom* g, const float* xs, float* cols)
{
    typedef float uvec __attribute__((vector_size(DC_VW * 4), aligned(4), may_alias));
    const int C = g->C, Hp = g->Hp, Wp = g->Wp, Wo = g->Wo;
    const ptrdiff_t plane = g->plane, cs = g->col_stride;
    int c, h, kj, o;
    for (kj = 0; kj < g->kw; kj++)
        for (c = 0; c < C; c++) {
            const float* src = xs + c * plane + kj;
            float* dst = cols + ((ptrdiff_t)kj * C + c) * cs;
            for (h = 0; h < Hp; h++)
                for (o = 0; o < Wo; o += DC_VW)
                    *(uvec*)(dst + (ptrdiff_t)h * Wo + o) =
                        *(const uvec*)(src + (ptrdiff_t)h * Wp + o);
        }
}

/* The forward with the kernel's sides KH x KW: constants once inlined, so that the tap
 * loops unroll (a 3x3 layer with one input channel spent more on loop control than on
 * multiply-adds). */
static inline __attribute__((always_inline, target(DC_TARGET)))
void DC_NAME(forward_k)(const minidl_direct_geom* g, const float* x, const float* wt,
                        const float* bias, float* y, ptrdiff_t n0, ptrdiff_t n1,
                        float* scratch, const int kh, const int kw)
{
    typedef float vec __attribute__((vector_size(DC_VW * 4)));
    typedef float uvec __attribute__((vector_size(DC_VW * 4), aligned(4), may_alias));
    const int C = g->C, H = g->H, W = g->W, F = g->F;
    const int Wo = g->Wo, fpad = g->fpad, taps = g->taps;
    const ptrdiff_t qlen = g->qlen, cs = g->col_stride, HoWo = (ptrdiff_t)g->Ho * g->Wo;
    const ptrdiff_t q_whole = HoWo / (DC_VW * DC_VB) * (DC_VW * DC_VB);
    float* xs = scratch;
    float* cols = scratch + g->xs_len;
    float* yq = cols + g->cols_len;
    ptrdiff_t n, q0, q;
    int c, f, f0, ki, kj, i, v;

    memset(scratch, 0, sizeof(float) * (size_t)(g->xs_len + g->cols_len)); /* pads, slack */
    for (n = n0; n < n1; n++) {
        float* yn = y + n * F * HoWo;
        DC_NAME(pad_planes)(g, x + n * C * H * W, xs);
        DC_NAME(shift_columns)(g, xs, cols);
        for (f0 = 0; f0 < fpad; f0 += DC_FB) {
            for (q0 = 0; q0 < qlen; q0 += DC_VW * DC_VB) {
                vec acc[DC_FB][DC_VB];
#pragma GCC unroll 16
                for (i = 0; i < DC_FB; i++)
#pragma GCC unroll 4
                    for (v = 0; v < DC_VB; v++)
                        acc[i][v] = (vec){0};
                for (kj = 0; kj < kw; kj++) {
                    for (c = 0; c < C; c++) {
                        const float* col = cols + ((ptrdiff_t)kj * C + c) * cs + q0;
                        const float* wr = wt + ((ptrdiff_t)c * taps + kj) * fpad + f0;
                        for (ki = 0; ki < kh; ki++) {
                            vec xv[DC_VB];
#pragma GCC unroll 4
                            for (v = 0; v < DC_VB; v++)
                                xv[v] = *(const uvec*)(col + (ptrdiff_t)ki * Wo + v * DC_VW);
#pragma GCC unroll 16
                            for (i = 0; i < DC_FB; i++) {
                                const float wi = wr[(ptrdiff_t)ki * kw * fpad + i];
#pragma GCC unroll 4
                                for (v = 0; v < DC_VB; v++)
                                    acc[i][v] += xv[v] * wi;
                            }
                        }
                    }
                }
                if (q0 < q_whole) {
                    /* whole blocks go straight to y, bias added: a copy pass afterwards
                     * would load across these stores before they reach the cache */
#pragma GCC unroll 16
                    for (i = 0; i < DC_FB; i++) {
                        if (f0 + i < F) {
                            const float b = bias != NULL ? bias[f0 + i] : 0.0f;
                            float* dst = yn + (ptrdiff_t)(f0 + i) * HoWo + q0;
#pragma GCC unroll 4
                            for (v = 0; v < DC_VB; v++)
                                *(uvec*)(dst + v * DC_VW) = acc[i][v] + b;
                        }
                    }
                } else {
#pragma GCC unroll 16
                    for (i = 0; i < DC_FB; i++)
#pragma GCC unroll 4
                        for (v = 0; v < DC_VB; v++)
                            *(uvec*)(yq + (ptrdiff_t)(f0 + i) * qlen + q0 + v * DC_VW) =
                                acc[i][v];
                }
            }
        }
        for (f = 0; f < F; f++) {   /* the last, partial block */
            const float b = bias != NULL ? bias[f] : 0.0f;
            const float* src = yq + (ptrdiff_t)f * qlen;
            float* dst = yn + (ptrdiff_t)f * HoWo;
            for (q = q_whole; q < HoWo; q++)
                dst[q] = src[q] + b;
        }
    }
}

__attribute__((target(DC_TARGET)))
static void DC_NAME(forward)(const minidl_direct_geom* g, const float* x, const float* wt,
                             const float* bias, float* y, ptrdiff_t n0, ptrdiff_t n1,
                             float* scratch)
{
    if (g->kh == 3 && g->kw == 3)
        DC_NAME(forward_k)(g, x, wt, bias, y, n0, n1, scratch, 3, 3);
    else if (g->kh == 5 && g->kw == 5)
        DC_NAME(forward_k)(g, x, wt, bias, y, n0, n1, scratch, 5, 5);
    else
        DC_NAME(forward_k)(g, x, wt, bias, y, n0, n1, scratch, g->kh, g->kw);
}

/* The input gradient with blocks of CB <= 8 channels x IVB <= 4 position vectors, dY'
 * by half rows or not (HALF): constants once inlined. */
static inline __attribute__((always_inline, target(DC_TARGET)))
void DC_NAME(input_blocks)(const minidl_direct_geom* g, const float* dy, const float* wc,
                           float* dx, ptrdiff_t n0, ptrdiff_t n1, float* scratch, const int CB,
                           const int IVB, const int HALF)
{
    typedef float vec __attribute__((vector_size(DC_VW * 4)));
    typedef float uvec __attribute__((vector_size(DC_VW * 4), aligned(4), may_alias));
    typedef float hvec __attribute__((vector_size(DC_VW * 2)));
    typedef float uhvec __attribute__((vector_size(DC_VW * 2), aligned(4), may_alias));
    const int C = g->C, H = g->H, W = g->W, F = g->F, kw = g->kw;
    const int Wp = g->Wp, Ho = g->Ho, Wo = g->Wo, cpad = g->cpad, taps = g->taps;
    const int layout = HALF ? MINIDL_IQ_HALF_ROWS : g->iq_layout, vpr = g->iq_vpr;
    const ptrdiff_t qlen = g->iq_len, dx_len = g->dx_len, pitch = g->iq_pitch;
    float* dyq = scratch;                              /* (F, qlen): dY in the row pitch */
    float* dxp = scratch + (ptrdiff_t)F * qlen;        /* (cpad, dx_len): padded dx */
    ptrdiff_t n, q0, shift;
    int c, c0, h, f, t, i, v, oh;

    memset(dyq, 0, sizeof(float) * (size_t)F * qlen);  /* only dY's entries change */
    for (n = n0; n < n1; n++) {
        if (pitch == Wo)   /* rows back to back (8 outputs by half rows): one copy */
            for (f = 0; f < F; f++)
                memcpy(dyq + f * qlen, dy + (n * F + f) * Ho * Wo,
                       sizeof(float) * (size_t)Ho * Wo);
        else
            for (f = 0; f < F; f++)
                for (oh = 0; oh < Ho; oh++)
                    memcpy(dyq + f * qlen + (ptrdiff_t)oh * pitch,
                           dy + ((n * F + f) * Ho + oh) * Wo, sizeof(float) * (size_t)Wo);
        memset(dxp, 0, sizeof(float) * (size_t)cpad * dx_len);
        /* each output position sends w[f, c, tap] * dY to input position q + shift(tap):
         * a block of channels x positions sums over f in registers, then is added to
         * dx at the tap's shift (taps outside, so the adds of one tap never overlap) */
        for (c0 = 0; c0 < cpad; c0 += CB) {
            for (t = 0; t < taps; t++) {
                shift = (ptrdiff_t)(t / kw) * Wp + t % kw;
                for (q0 = 0; q0 < qlen; q0 += DC_VW * IVB) {
                    vec acc[8][4];
                    ptrdiff_t dst[4];   /* where each vector (by half rows: its lower
                                         * half, the upper one a row below) adds */
#pragma GCC unroll 4
                    for (v = 0; v < IVB; v++)
                        dst[v] = minidl_direct_iq_offset(layout, q0 / DC_VW + v, Wp, vpr,
                                                         DC_VW) + shift;
#pragma GCC unroll 16
                    for (i = 0; i < CB; i++)
#pragma GCC unroll 4
                        for (v = 0; v < IVB; v++)
                            acc[i][v] = (vec){0};
                    for (f = 0; f < F; f++) {
                        const float* yrow = dyq + f * qlen + q0;
                        const float* wr = wc + ((ptrdiff_t)f * taps + t) * cpad + c0;
                        vec yv[4];
#pragma GCC unroll 4
                        for (v = 0; v < IVB; v++)
                            yv[v] = *(const uvec*)(yrow + v * DC_VW);
#pragma GCC unroll 16
                        for (i = 0; i < CB; i++) {
                            const float wi = wr[i];
#pragma GCC unroll 4
                            for (v = 0; v < IVB; v++)
                                acc[i][v] += yv[v] * wi;
                        }
                    }
#pragma GCC unroll 16
                    for (i = 0; i < CB; i++)
#pragma GCC unroll 4
                        for (v = 0; v < IVB; v++) {
                            float* d = dxp + (ptrdiff_t)(c0 + i) * dx_len + dst[v];
                            if (HALF) {
                                union { vec v; hvec h[2]; } u;
                                u.v = acc[i][v];
                                *(uhvec*)d = *(uhvec*)d + u.h[0];
                                *(uhvec*)(d + Wp) = *(uhvec*)(d + Wp) + u.h[1];
                            } else {
                                *(uvec*)d = *(uvec*)d + acc[i][v];
                            }
                        }
                }
            }
        }
        if (g->pw == 0)   /* no column padding: the rows are back to back */
            for (c = 0; c < C; c++)
                memcpy(dx + (n * C + c) * H * W, dxp + c * dx_len + (ptrdiff_t)g->ph * Wp,
                       sizeof(float) * (size_t)H * W);
        else
            for (c = 0; c < C; c++)
                for (h = 0; h < H; h++)
                    memcpy(dx + ((n * C + c) * H + h) * W,
                           dxp + c * dx_len + (ptrdiff_t)(h + g->ph) * Wp + g->pw,
                           sizeof(float) * (size_t)W);
    }
}

__attribute__((target(DC_TARGET)))
static void DC_NAME(input)(const minidl_direct_geom* g, const float* dy, const float* wc,
                           float* dx, ptrdiff_t n0, ptrdiff_t n1, float* scratch)
{
    const int half = g->iq_layout == MINIDL_IQ_HALF_ROWS, H2 = MINIDL_DIRECT_IVB_HALF;
    /* cb 6: C = 6, 18, 30, ...: no channel of the block is padding */
    if (g->cb == 6 && half && g->ivb == MINIDL_DIRECT_IVB_HALF6)
        DC_NAME(input_blocks)(g, dy, wc, dx, n0, n1, scratch, 6, MINIDL_DIRECT_IVB_HALF6, 1);
    else if (g->cb == 6 && half)
        DC_NAME(input_blocks)(g, dy, wc, dx, n0, n1, scratch, 6, H2, 1);
    else if (g->cb == 6)
        DC_NAME(input_blocks)(g, dy, wc, dx, n0, n1, scratch, 6, DC_IVB6, 0);
    else if (half)
        DC_NAME(input_blocks)(g, dy, wc, dx, n0, n1, scratch, DC_CB, H2, 1);
    else
        DC_NAME(input_blocks)(g, dy, wc, dx, n0, n1, scratch, DC_CB, DC_IVB, 0);
}

/* acc (VW/2 doubles) += src[0:n] widened to double, in a fixed order: half vectors into
 * four running sums (one chain would wait on each add), the rest as a last partial one.
 * The lanes are summed once, after the last sample. */
__attribute__((target(DC_TARGET)))
static void DC_NAME(sum_plane)(const float* src, ptrdiff_t n, double* acc)
{
    typedef double dvec __attribute__((vector_size(DC_VW * 4)));
    typedef float uhvec __attribute__((vector_size(DC_VW * 2), aligned(4), may_alias));
    const int hw = DC_VW / 2;
    dvec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, rest = {0};
    ptrdiff_t q = 0;
    int l;
    for (; q + 4 * hw <= n; q += 4 * hw) {
        a0 += __builtin_convertvector(*(const uhvec*)(src + q), dvec);
        a1 += __builtin_convertvector(*(const uhvec*)(src + q + hw), dvec);
        a2 += __builtin_convertvector(*(const uhvec*)(src + q + 2 * hw), dvec);
        a3 += __builtin_convertvector(*(const uhvec*)(src + q + 3 * hw), dvec);
    }
    for (; q + hw <= n; q += hw)
        a0 += __builtin_convertvector(*(const uhvec*)(src + q), dvec);
    for (l = 0; q + l < n; l++)
        rest[l] = src[q + l];
    *(dvec*)acc += ((a0 + a1) + (a2 + a3)) + rest;
}

__attribute__((target(DC_TARGET)))
static void DC_NAME(weight)(const minidl_direct_geom* g, const float* x, const float* dy,
                            const unsigned char* codes, ptrdiff_t n0, ptrdiff_t n1, float* dw,
                            double* db, float* scratch)
{
    typedef float vec __attribute__((vector_size(DC_VW * 4)));
    typedef float uvec __attribute__((vector_size(DC_VW * 4), aligned(4), may_alias));
    const int C = g->C, H = g->H, W = g->W, F = g->F, kw = g->kw;
    const int Wo = g->Wo, fpad = g->fpad, taps = g->taps;
    const int tpad = g->tpad, block = g->wblock;
    const ptrdiff_t cs = g->col_stride, cols_len = g->cols_len, wq = g->wq_len;
    const ptrdiff_t HoWo = (ptrdiff_t)g->Ho * g->Wo;
    /* padded planes, two: the next sample's are made before this one's are read (a read
     * right after the narrow row copies waits for them) */
    double* dbv = (double*)scratch;                          /* (fpad, VW/2): db's lanes */
    float* xs[2] = {scratch + fpad * DC_VW, scratch + fpad * DC_VW + g->xs_len};
    float* colsb = xs[1] + g->xs_len;                        /* block x column planes */
    float* dyb = colsb + (ptrdiff_t)block * cols_len;        /* block x (fpad, wq) */
    ptrdiff_t b0, q, offset[DC_WT];
    int m, s, c, f, f0, t, t0, i, j, l, half;

    memset(scratch, 0, sizeof(float) * (size_t)(fpad * DC_VW + 2 * g->xs_len
                                                + (ptrdiff_t)block * (cols_len + fpad * wq)));
    memset(dw, 0, sizeof(float) * (size_t)F * C * taps);
    for (b0 = n0; b0 < n1; b0 += block) {
        m = (int)(n1 - b0 < block ? n1 - b0 : block);
        DC_NAME(pad_planes)(g, x + b0 * C * H * W, xs[0]);
        for (s = 0; s < m; s++) {
            const ptrdiff_t n = b0 + s;
            if (s + 1 < m)
                DC_NAME(pad_planes)(g, x + (n + 1) * C * H * W, xs[(s + 1) & 1]);
            DC_NAME(shift_columns)(g, xs[s & 1], colsb + s * cols_len);
            for (f = 0; f < F; f++) {      /* dY plane, zero past Ho*Wo (and f >= F) */
                float* dst = dyb + ((ptrdiff_t)s * fpad + f) * wq;
                if (codes == NULL)
                    memcpy(dst, dy + (n * F + f) * HoWo, sizeof(float) * (size_t)HoWo);
                else    /* dy is a 2x2 max pool's gradient: spread it by the window codes */
                    minidl_max_2x2_backward_f(dy + (n * F + f) * (HoWo / 4),
                                              codes + (n * F + f) * (HoWo / 4), dst,
                                              g->Ho / 2, Wo / 2);
                if (db != NULL)
                    DC_NAME(sum_plane)(dst, HoWo, dbv + (ptrdiff_t)f * (DC_VW / 2));
            }
        }
        /* one (filter block, channel, tap block) pass reads WF dY planes and WT rows of
         * column-shifted planes a sample: the block size keeps that in L1 */
        for (f0 = 0; f0 < fpad; f0 += DC_WF) {
            for (c = 0; c < C; c++) {
                for (t0 = 0; t0 < tpad; t0 += DC_WT) {
                    vec acc[DC_WF][DC_WT];
                    for (j = 0; j < DC_WT; j++) {   /* tap (ki, kj) reads X_kj at + ki*Wo */
                        t = t0 + j < taps ? t0 + j : 0;
                        offset[j] = ((ptrdiff_t)(t % kw) * C + c) * cs + (ptrdiff_t)(t / kw) * Wo;
                    }
#pragma GCC unroll 16
                    for (i = 0; i < DC_WF; i++)
#pragma GCC unroll 4
                        for (j = 0; j < DC_WT; j++)
                            acc[i][j] = (vec){0};
                    for (s = 0; s < m; s++) {
                        const float* xc = colsb + s * cols_len;
                        const float* dyf = dyb + ((ptrdiff_t)s * fpad + f0) * wq;
                        for (q = 0; q < wq; q += DC_VW) {
                            vec xv[DC_WT];
#pragma GCC unroll 4
                            for (j = 0; j < DC_WT; j++)
                                xv[j] = *(const uvec*)(xc + offset[j] + q);
#pragma GCC unroll 16
                            for (i = 0; i < DC_WF; i++) {
                                const vec d = *(const uvec*)(dyf + i * wq + q);
#pragma GCC unroll 4
                                for (j = 0; j < DC_WT; j++)
                                    acc[i][j] += d * xv[j];
                            }
                        }
                    }
                    /* horizontal sums with constant indices, so that acc stays in
                     * registers; the padding filters and taps are dropped after */
                    float sums[DC_WF][DC_WT];
#pragma GCC unroll 16
                    for (i = 0; i < DC_WF; i++)
#pragma GCC unroll 4
                        for (j = 0; j < DC_WT; j++) {
                            /* pairwise: halves added lane by lane (vectorises) */
                            union { vec v; float f[DC_VW]; } u;
                            u.v = acc[i][j];
#pragma GCC unroll 8
                            for (half = DC_VW / 2; half > 0; half /= 2)
#pragma GCC unroll 8
                                for (l = 0; l < half; l++)
                                    u.f[l] += u.f[l + half];
                            sums[i][j] = u.f[0];
                        }
                    for (i = 0; i < DC_WF && f0 + i < F; i++)
                        for (j = 0; j < DC_WT && t0 + j < taps; j++)
                            dw[((ptrdiff_t)(f0 + i) * C + c) * taps + t0 + j] += sums[i][j];
                }
            }
        }
    }
    if (db != NULL)
        for (f = 0; f < F; f++) {
            double total = 0;
            for (l = 0; l < DC_VW / 2; l++)
                total += dbv[(ptrdiff_t)f * (DC_VW / 2) + l];
            db[f] = total;
        }
}

/* This level's vector width and register blocks, for minidl_direct_init. */
static void DC_NAME(blocks)(int* vw, int* fb, int* vb, int* cb, int* ivb, int* ivb6, int* wf,
                           int* wt)
{
    *vw = DC_VW; *fb = DC_FB; *vb = DC_VB; *cb = DC_CB; *ivb = DC_IVB; *ivb6 = DC_IVB6;
    *wf = DC_WF; *wt = DC_WT;
}

#undef DC_NAME
#undef DC_CAT
#undef DC_CAT2
#undef DC_SUFFIX
#undef DC_TARGET
#undef DC_VW
#undef DC_FB
#undef DC_VB
#undef DC_CB
#undef DC_IVB
#undef DC_IVB6
#undef DC_WF
#undef DC_WT
