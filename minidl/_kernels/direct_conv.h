/* Direct float32 convolution, stride 1, dilation 1, one group: no im2col.
 *
 * Forward and weight gradient: "column-shifted planes".  For each column offset kj of the
 * filter, copy the zero-padded input plane's columns kj .. kj + Wo - 1 into a compact
 * (Hp, Wo) plane X_kj (kw copies of the plane, against kh*kw for im2col).  Output (oh, ow)
 * sits at q = oh*Wo + ow, and tap (ki, kj) reads X_kj at q + ki*Wo: one constant shift
 * per tap, so each tap is a multiply-add of whole vectors of consecutive outputs.
 *
 *   forward       y[f, q] = sum_{c, ki, kj} w[f, c, ki, kj] * X_kj[c, q + ki*Wo]
 *   weight grad   dw[f, c, ki, kj] = sum_{n, q} dY[n, f, q] * X_kj[n, c, q + ki*Wo]
 *
 * Input gradient: "shifted rows".  dY is laid out with the padded input's row pitch Wp
 * (zero in the last kw - 1 positions of each row), so output q = oh*Wp + ow sends
 * w[f, c, ki, kj] * dY to the padded input position q + ki*Wp + kj:
 *
 *   input grad    dxp[c, q + ki*Wp + kj] += sum_f w[f, c, ki, kj] * dY'[f, q]
 *
 * (a block of channels x positions sums over f in registers, then is added once per
 * tap).  The zero positions of dY' cost lanes, a share (kw - 1) / Wp, but there is no
 * col2im.  When whole vectors per dY row waste fewer lanes (MNIST-like 6->16 on AVX2:
 * 8-wide rows in 8-float vectors, against 8 of every 12), dY' is laid out "by rows"
 * instead: row oh in vectors of its own, vector j of the row adding into dxp at
 * oh*Wp + j*vw + ki*Wp + kj.  Rows of at most vw/2 outputs (MNIST-like 6->16 on AVX-512:
 * 8 of 16 lanes) go "by half rows": rows 2j and 2j + 1 in the halves of vector j, each
 * half adding into its own row of dxp; the multiply-adds stay whole-vector.  The caller
 * picks the layout (minidl.ops.conv_plan); every one runs at every shape, except half
 * rows, which needs rows of at most vw/2 outputs.
 *
 * The code body (direct_conv_impl.h) is compiled twice with GCC/Clang vector types: for
 * AVX-512 (16 floats a vector) and for AVX2 + FMA (8), each with the target attribute, so
 * the rest of the package keeps the baseline instruction set.
 * minidl_direct_select_level() picks one at run time from the kernels' common level; at
 * level 0 (or on another compiler or architecture) minidl uses im2col + GEMM.  Every routine works on a caller-given range of samples
 * with a caller-given scratch buffer (one per thread, 64-byte aligned); nothing here
 * allocates.  Vector loads may read past the live data into zeroed or finite slack: such
 * lanes are thrown away (forward, input) or multiplied by zeros of dY (weight). */
#ifndef MINIDL_DIRECT_CONV_H
#define MINIDL_DIRECT_CONV_H

#include <stddef.h>
#include <string.h>

#include "max_pool.h"   /* the 2x2 pool's backward, for a pooled dY */

typedef struct {
    int N, C, H, W, F, kh, kw, ph, pw;  /* the problem */
    int Hp, Wp, Ho, Wo, taps;           /* padded plane, output plane, kh*kw */
    int level, vw;                      /* instruction set level, floats per vector */
    int fpad, cpad;                     /* F, C rounded up to the register blocks */
    int cb, ivb;                        /* input grad: channels, position vectors a block */
    int iq_layout;                      /* input grad: MINIDL_IQ_PITCH, _ROWS, _HALF_ROWS */
    int iq_pitch, iq_vpr;               /* input grad: dY' row pitch; vectors a row */
    int tpad;                           /* taps rounded up to the weight-grad tap block */
    int wblock;                         /* weight grad: samples per block of scratch */
    ptrdiff_t plane;                    /* Hp*Wp */
    ptrdiff_t xs_len;                   /* one sample's padded planes + read slack */
    ptrdiff_t col_stride;               /* one column-shifted plane (Hp*Wo) + slack */
    ptrdiff_t cols_len;                 /* one sample's kw*C column-shifted planes */
    ptrdiff_t qlen;                     /* forward: outputs per plane, whole blocks */
    ptrdiff_t wq_len;                   /* weight grad: outputs per plane, whole vectors */
    ptrdiff_t iq_len;                   /* input grad: dY' positions a plane, whole blocks */
    ptrdiff_t dx_len;                   /* input grad: one padded dx plane + overhang */
} minidl_direct_geom;

#include "cpu_level.h"
enum { MINIDL_DIRECT_NONE = MINIDL_CPU_BASELINE, MINIDL_DIRECT_AVX2 = MINIDL_CPU_AVX2,
       MINIDL_DIRECT_AVX512 = MINIDL_CPU_AVX512 };
/* the input gradient's dY' layouts (above) */
enum { MINIDL_IQ_PITCH = 0, MINIDL_IQ_ROWS = 1, MINIDL_IQ_HALF_ROWS = 2 };
/* position vectors a block by half rows, at both levels: MNIST-like's 8 rows make 4
 * vectors, which blocks of 3 would round up to 6; with 6 channels a block, 4 vectors
 * when the rows fill them (24 sums a block: the f loop's loads and the block's adds
 * spread over twice the multiply-adds) */
#define MINIDL_DIRECT_IVB_HALF 2
#define MINIDL_DIRECT_IVB_HALF6 4

/* Where dY' vector j adds into a padded dx plane (row pitch Wp), before the tap's shift,
 * in a layout with vw floats a vector and vpr vectors a row (by half rows: its lower
 * half; the upper one adds a row further).  Arguments, not the geometry, so that the
 * kernels can pass constants. */
static inline ptrdiff_t minidl_direct_iq_offset(int layout, ptrdiff_t j, int Wp, int vpr,
                                                int vw)
{
    if (layout == MINIDL_IQ_HALF_ROWS)
        return 2 * j * Wp;
    if (layout == MINIDL_IQ_ROWS)
        return (j / vpr) * Wp + (j % vpr) * vw;
    return j * vw;
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && !defined(MINIDL_NO_DIRECT)
#define MINIDL_DIRECT_COMPILED 1

/* Register blocks (accumulators: the product of each pair): forward filters x output
 * vectors (DC_FB x DC_VB), input grad channels x position vectors (DC_CB x DC_IVB),
 * weight grad filters x taps (DC_WF x DC_WT); DC_IVB6: position vectors with the
 * 6-channel input grad block.  The body undefines them at its end. */
#define DC_SUFFIX avx512
#define DC_TARGET "avx512f,avx2,fma"
#define DC_VW 16
#define DC_FB 8
#define DC_VB 2
#define DC_CB 8
#define DC_IVB 3
#define DC_IVB6 3
#define DC_WF 4
#define DC_WT 5
#include "direct_conv_impl.h"

#define DC_SUFFIX avx2
#define DC_TARGET "avx2,fma"
#define DC_VW 8
#define DC_FB 4
#define DC_VB 2
#define DC_CB 4
#define DC_IVB 3
#define DC_IVB6 2
#define DC_WF 2
#define DC_WT 5
#include "direct_conv_impl.h"

static int minidl_direct_select_level(int level) { return level; }

#define DC_DISPATCH(name, args) \
    do { if (g->level == MINIDL_DIRECT_AVX512) minidl_direct_##name##_avx512 args; \
         else if (g->level == MINIDL_DIRECT_AVX2) minidl_direct_##name##_avx2 args; } while (0)

#else
#define MINIDL_DIRECT_COMPILED 0
static int minidl_direct_select_level(int level) { (void)level; return MINIDL_DIRECT_NONE; }
#define DC_DISPATCH(name, args) do { } while (0)
#endif

static inline ptrdiff_t minidl_direct_round_up(ptrdiff_t a, ptrdiff_t b)
{
    return (a + b - 1) / b * b;
}

/* Fill g for the problem at the given level (> 0), the input gradient laid out as
 * iq_layout (the caller's choice; by half rows only where 2*Wo <= vw: a row must fit a
 * half vector).  Scratch lengths: see below. */
static void minidl_direct_init(minidl_direct_geom* g, int level, int N, int C, int H, int W,
                               int F, int kh, int kw, int ph, int pw, int iq_layout)
{
    int fb, vb, cb, ivb, ivb6, wf, wt;
    ptrdiff_t per_sample, nv_pitch, nv_rows, nv_half, nv;
    g->N = N; g->C = C; g->H = H; g->W = W; g->F = F; g->kh = kh; g->kw = kw;
    g->ph = ph; g->pw = pw;
    g->Hp = H + 2 * ph; g->Wp = W + 2 * pw;
    g->Ho = g->Hp - kh + 1; g->Wo = g->Wp - kw + 1;
    g->taps = kh * kw;
    g->level = level;
#if MINIDL_DIRECT_COMPILED
    if (level == MINIDL_DIRECT_AVX512)
        minidl_direct_blocks_avx512(&g->vw, &fb, &vb, &cb, &ivb, &ivb6, &wf, &wt);
    else
        minidl_direct_blocks_avx2(&g->vw, &fb, &vb, &cb, &ivb, &ivb6, &wf, &wt);
#else
    g->vw = fb = vb = cb = ivb = ivb6 = wf = wt = 1;   /* never called: level is 0 here */
#endif
    g->fpad = (int)minidl_direct_round_up(F, fb > wf ? fb : wf);
    /* a 6-channel block too: LeNet's 6-channel layers would pad to 8 */
    g->cb = (C % cb != 0 && C % 6 == 0) ? 6 : cb;
    g->ivb = g->cb == 6 ? ivb6 : ivb;
    g->cpad = (int)minidl_direct_round_up(C, g->cb);
    g->tpad = (int)minidl_direct_round_up(g->taps, wt);
    g->plane = (ptrdiff_t)g->Hp * g->Wp;
    /* padded planes, plus what the column copies read past the last one */
    g->xs_len = minidl_direct_round_up((ptrdiff_t)C * g->plane + kw + g->vw, g->vw);
    g->qlen = minidl_direct_round_up((ptrdiff_t)g->Ho * g->Wo, (ptrdiff_t)g->vw * vb);
    g->wq_len = minidl_direct_round_up((ptrdiff_t)g->Ho * g->Wo, g->vw);
    /* reads reach (kh - 1)*Wo + qlen <= Hp*Wo + vw*vb; the column copies write whole
     * vectors, up to vw - 1 past a plane's last row */
    g->col_stride = minidl_direct_round_up((ptrdiff_t)g->Hp * g->Wo + (ptrdiff_t)g->vw * vb,
                                           g->vw);
    g->cols_len = (ptrdiff_t)kw * C * g->col_stride;
    /* input grad: position vectors (whole blocks) in the layout asked for */
    g->iq_vpr = (int)((g->Wo + g->vw - 1) / g->vw);
    nv_pitch = minidl_direct_round_up(((ptrdiff_t)g->Ho * g->Wp + g->vw - 1) / g->vw, g->ivb);
    nv_rows = minidl_direct_round_up((ptrdiff_t)g->Ho * g->iq_vpr, g->ivb);
    nv_half = ((ptrdiff_t)g->Ho + 1) / 2;
    g->iq_layout = iq_layout;
    if (iq_layout == MINIDL_IQ_HALF_ROWS) {
        g->ivb = g->cb == 6 && nv_half % MINIDL_DIRECT_IVB_HALF6 == 0
                     ? MINIDL_DIRECT_IVB_HALF6 : MINIDL_DIRECT_IVB_HALF;
        nv_half = minidl_direct_round_up(nv_half, g->ivb);
        g->iq_pitch = g->vw / 2;
        nv = nv_half;
    } else if (iq_layout == MINIDL_IQ_ROWS) {
        g->iq_pitch = g->iq_vpr * g->vw;
        nv = nv_rows;
    } else {
        g->iq_pitch = g->Wp;
        nv = nv_pitch;
    }
    g->iq_len = nv * g->vw;
    /* the adds reach the last vector's offset (by half rows: its upper half's, a row
     * further) + the largest tap shift + a vector */
    g->dx_len = minidl_direct_round_up(
        minidl_direct_iq_offset(g->iq_layout, nv - 1, g->Wp, g->iq_vpr, g->vw)
        + (g->iq_layout == MINIDL_IQ_HALF_ROWS ? g->Wp : 0)
        + g->vw + (ptrdiff_t)(kh - 1) * g->Wp + kw, g->vw);
    /* weight grad: samples a block, so that what one (filter block, channel, tap block)
     * pass reads of every sample in it (WF dY planes, WT column-shifted rows) stays in
     * L1 (~32 KiB) */
    per_sample = (ptrdiff_t)(wf + wt) * g->wq_len;
    g->wblock = (int)((1 << 13) / per_sample);
    if (g->wblock < 1) g->wblock = 1;
    if (g->wblock > N) g->wblock = N > 0 ? N : 1;
}

/* Scratch floats one thread needs for each routine. */
static ptrdiff_t minidl_direct_forward_scratch(const minidl_direct_geom* g)
{
    return g->xs_len + g->cols_len + (ptrdiff_t)g->fpad * g->qlen;
}

static ptrdiff_t minidl_direct_input_scratch(const minidl_direct_geom* g)
{
    return (ptrdiff_t)g->F * g->iq_len + (ptrdiff_t)g->cpad * g->dx_len;
}

static ptrdiff_t minidl_direct_weight_scratch(const minidl_direct_geom* g)
{
    return (ptrdiff_t)g->fpad * g->vw + 2 * g->xs_len
           + (ptrdiff_t)g->wblock * (g->cols_len + (ptrdiff_t)g->fpad * g->wq_len);
}

/* Weight layouts the routines read (built once per call, shared by the threads):
 * forward wt[(c*taps + t)*fpad + f], input grad wc[(f*taps + t)*cpad + c]. */
static void minidl_direct_weight_for_forward(const minidl_direct_geom* g, const float* w,
                                             float* wt)
{
    int f, c, t;
    memset(wt, 0, sizeof(float) * (size_t)g->C * g->taps * g->fpad);
    for (f = 0; f < g->F; f++)
        for (c = 0; c < g->C; c++)
            for (t = 0; t < g->taps; t++)
                wt[((ptrdiff_t)c * g->taps + t) * g->fpad + f] =
                    w[((ptrdiff_t)f * g->C + c) * g->taps + t];
}

static void minidl_direct_weight_for_input(const minidl_direct_geom* g, const float* w,
                                           float* wc)
{
    int f, c, t;
    memset(wc, 0, sizeof(float) * (size_t)g->F * g->taps * g->cpad);
    for (f = 0; f < g->F; f++)
        for (c = 0; c < g->C; c++)
            for (t = 0; t < g->taps; t++)
                wc[((ptrdiff_t)f * g->taps + t) * g->cpad + c] =
                    w[((ptrdiff_t)f * g->C + c) * g->taps + t];
}

/* y[n0:n1] (F, Ho, Wo) = conv(x[n0:n1]) + bias (bias may be NULL). */
static void minidl_direct_forward(const minidl_direct_geom* g, const float* x, const float* wt,
                                  const float* bias, float* y, ptrdiff_t n0, ptrdiff_t n1,
                                  float* scratch)
{
    DC_DISPATCH(forward, (g, x, wt, bias, y, n0, n1, scratch));
}

/* dx[n0:n1] (C, H, W) from dy[n0:n1] (F, Ho, Wo). */
static void minidl_direct_input(const minidl_direct_geom* g, const float* dy, const float* wc,
                                float* dx, ptrdiff_t n0, ptrdiff_t n1, float* scratch)
{
    DC_DISPATCH(input, (g, dy, wc, dx, n0, n1, scratch));
}

/* dw (F, C, kh, kw) = the weight gradient over samples n0:n1 (overwritten); db (F), if
 * not NULL, = the sum of dY over those samples (overwritten), in double.  dY is dy (N, F,
 * Ho, Wo), or, with codes, what max_pool.h's 2x2 backward makes of dy (N, F, Ho/2, Wo/2)
 * and its window codes (Ho, Wo even): a pooling layer's gradient never written out. */
static void minidl_direct_weight(const minidl_direct_geom* g, const float* x, const float* dy,
                                 const unsigned char* codes, ptrdiff_t n0, ptrdiff_t n1,
                                 float* dw, double* db, float* scratch)
{
    DC_DISPATCH(weight, (g, x, dy, codes, n0, n1, dw, db, scratch));
}

#endif
