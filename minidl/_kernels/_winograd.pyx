# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Winograd F(2x2, 3x3) convolution: 3x3 kernel, stride 1, dilation 1, groups 1.

Cross-correlation as PyTorch's conv2d (no flip), x (N, C, H, W), w (F, C, 3, 3),
y (N, F, Ho, Wo) with Ho = H + 2*ph - 2, Wo = W + 2*pw - 2.

The maths (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks").  The
output is cut into 2x2 tiles; tile (th, tw) of sample n reads the 4x4 input patch d whose
top-left corner is (2*th - ph, 2*tw - pw) (reads outside the plane are zeros: padding):

    y_tile (2x2) = Aᵀ [ Σ_c U[f, c] ⊙ V[c] ] A,   U = G g Gᵀ (4x4),   V = Bᵀ d B (4x4)

          | 1  0 -1  0 |          | 1    0    0  |
    Bᵀ =  | 0  1  1  0 |     G =  | 1/2  1/2  1/2|     Aᵀ = | 1  1  1  0 |
          | 0 -1  1  0 |          | 1/2 -1/2  1/2|          | 0  1 -1 -1 |
          | 0  1  0 -1 |          | 0    0    1  |

Each of the 16 positions ξ of the 4x4 transformed tile is an independent matrix product
over channels: M[ξ] (F, T) = U[ξ] (F, C) @ V[ξ] (C, T), 2.25x fewer multiplications than
the direct 3x3 sum (16 per 2x2 outputs instead of 36).  Clipped at the edge when Ho or Wo
is odd (the extra outputs are computed and dropped).

Layout.  U is (16, F, C).  Tiles are numbered over all samples, t = n*P + th*tW + tw
(P = tH*tW tiles per sample), so that small planes (4x4: 4 tiles) still give wide
GEMMs.  Tiles are processed in blocks of tb consecutive tiles (tb depends on C and F
only: a block's V and M stay in the L2 cache; numpy's GEMMs over all 4096 tiles of a
CIFAR layer at once ran at half the speed of blocks of 64-128).  Each thread owns its
block buffers: V (16, C, tb) and M (16, F, tb), each ξ slice padded by XI_PAD elements
(strides a multiple of 4 KiB alias in L1), a gather scratch and a table of where each
tile of the block reads and writes (the same for every channel).

    forward          V = Bᵀ d B per block;  M[ξ] = U[ξ] @ V[ξ];  y = Aᵀ M A + b
    backward input   the forward on dY with w' (C, F, 3, 3), w'[c, f] = rot180(w[f, c]),
                     and padding (2 - ph, 2 - pw)  (stride 1, dilation 1, ph, pw <= 2)
    backward weight  dM = A dY_tile Aᵀ (4x4 per tile; outputs past Ho, Wo are zeros);
                     dU[ξ] (F, C) = Σ_blocks dM[ξ] (F, tb) @ V[ξ]ᵀ (tb, C);
                     dW = Gᵀ dU G;  db = Σ dY
BLAS is column-major, so each row-major product above is passed as its transpose.

Determinism: blocks depend on the problem only; the weight gradient sums fixed chunks of
blocks (chunking depends on the problem size only, never on the thread count) into
their own partials, reduced in chunk order.  Every output is computed by the same
operations for any number of threads.
"""
import numpy as np
cimport numpy as cnp
from cython.parallel cimport prange, threadid
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memcpy, memset
from cython cimport floating

from minidl._kernels._helpers cimport (
    minidl_planned_threads, choose_threads, gemm, split_units, partial_chunks, add_partials,
    sum_bias_partials,
)

cnp.import_array()

# The per-tile arithmetic of the three data transforms, vectorised across the m tiles
# of a block: the gathered patches d (m, 16), 2x2 outputs o (m, 4) and 2x2 dY tiles
# e (m, 4) are tile-major (a tile's rows are short contiguous copies), the transformed
# arrays V, M, dM are (16 rows, m) with a row stride.  In C so that ``restrict`` and
# ``ivdep`` tell the compiler that no two rows overlap: then the loops over k vectorise
# (checked with gcc -fopt-info-vec).  Moving the gather from (16, m) to (m, 16) took the
# forward at N=64 64->32 18x18 p0 from 7.9 to 4.5 ms (1 thread).
cdef extern from *:
    """
    /* Scalars only (no local arrays) and ivdep (the 16 rows of one output array never
       overlap; gcc cannot prove it for an unknown row stride): the loops over k then
       vectorise. */
    #if defined(_MSC_VER) && !defined(restrict)
    #define restrict __restrict
    #endif
    #define WG_L(p, s, i) (p)[(i) * (s) + k]   /* row i of (rows, m), row stride s */
    #define WG_T(p, n, i) (p)[k * (n) + (i)]   /* entry i of tile k of (m, n) */
    #define MINIDL_WINOGRAD_ARITH(T, S)                                                   \\
    /* v (16 rows, stride vs) = Bᵀ d B, d (m, 16): tile k's 4x4 patch, row-major */     \\
    static void wg_input_arith_##S(const T* restrict d, T* restrict v,                  \\
                                   Py_ssize_t vs, Py_ssize_t m) {                        \\
        _Pragma("GCC ivdep")                                                              \\
        for (Py_ssize_t k = 0; k < m; k++) {                                             \\
            /* Bᵀ d, column s: e0..e3 */                                                  \\
            T e00 = WG_T(d, 16, 0) - WG_T(d, 16, 8), e01 = WG_T(d, 16, 1) - WG_T(d, 16, 9); \\
            T e02 = WG_T(d, 16, 2) - WG_T(d, 16, 10), e03 = WG_T(d, 16, 3) - WG_T(d, 16, 11); \\
            T e10 = WG_T(d, 16, 4) + WG_T(d, 16, 8), e11 = WG_T(d, 16, 5) + WG_T(d, 16, 9); \\
            T e12 = WG_T(d, 16, 6) + WG_T(d, 16, 10), e13 = WG_T(d, 16, 7) + WG_T(d, 16, 11); \\
            T e20 = WG_T(d, 16, 8) - WG_T(d, 16, 4), e21 = WG_T(d, 16, 9) - WG_T(d, 16, 5); \\
            T e22 = WG_T(d, 16, 10) - WG_T(d, 16, 6), e23 = WG_T(d, 16, 11) - WG_T(d, 16, 7); \\
            T e30 = WG_T(d, 16, 4) - WG_T(d, 16, 12), e31 = WG_T(d, 16, 5) - WG_T(d, 16, 13); \\
            T e32 = WG_T(d, 16, 6) - WG_T(d, 16, 14), e33 = WG_T(d, 16, 7) - WG_T(d, 16, 15); \\
            /* (Bᵀ d) B */                                                                \\
            WG_L(v, vs, 0) = e00 - e02;  WG_L(v, vs, 1) = e01 + e02;                      \\
            WG_L(v, vs, 2) = e02 - e01;  WG_L(v, vs, 3) = e01 - e03;                      \\
            WG_L(v, vs, 4) = e10 - e12;  WG_L(v, vs, 5) = e11 + e12;                      \\
            WG_L(v, vs, 6) = e12 - e11;  WG_L(v, vs, 7) = e11 - e13;                      \\
            WG_L(v, vs, 8) = e20 - e22;  WG_L(v, vs, 9) = e21 + e22;                      \\
            WG_L(v, vs, 10) = e22 - e21; WG_L(v, vs, 11) = e21 - e23;                     \\
            WG_L(v, vs, 12) = e30 - e32; WG_L(v, vs, 13) = e31 + e32;                     \\
            WG_L(v, vs, 14) = e32 - e31; WG_L(v, vs, 15) = e31 - e33;                     \\
        }                                                                                 \\
    }                                                                                     \\
    /* o (m, 4): tile k's y00 y01 y10 y11 = Aᵀ M A + b, M (16 rows, stride ms) */     \\
    static void wg_output_arith_##S(const T* restrict M, Py_ssize_t ms, T b,             \\
                                    T* restrict o, Py_ssize_t m) {                       \\
        _Pragma("GCC ivdep")                                                              \\
        for (Py_ssize_t k = 0; k < m; k++) {                                             \\
            /* Aᵀ M: rows u0, u1 */                                                       \\
            T u00 = WG_L(M, ms, 0) + WG_L(M, ms, 4) + WG_L(M, ms, 8);                     \\
            T u01 = WG_L(M, ms, 1) + WG_L(M, ms, 5) + WG_L(M, ms, 9);                     \\
            T u02 = WG_L(M, ms, 2) + WG_L(M, ms, 6) + WG_L(M, ms, 10);                    \\
            T u03 = WG_L(M, ms, 3) + WG_L(M, ms, 7) + WG_L(M, ms, 11);                    \\
            T u10 = WG_L(M, ms, 4) - WG_L(M, ms, 8) - WG_L(M, ms, 12);                    \\
            T u11 = WG_L(M, ms, 5) - WG_L(M, ms, 9) - WG_L(M, ms, 13);                    \\
            T u12 = WG_L(M, ms, 6) - WG_L(M, ms, 10) - WG_L(M, ms, 14);                   \\
            T u13 = WG_L(M, ms, 7) - WG_L(M, ms, 11) - WG_L(M, ms, 15);                   \\
            /* (Aᵀ M) A + b */                                                            \\
            WG_T(o, 4, 0) = u00 + u01 + u02 + b;                                         \\
            WG_T(o, 4, 1) = u01 - u02 - u03 + b;                                         \\
            WG_T(o, 4, 2) = u10 + u11 + u12 + b;                                         \\
            WG_T(o, 4, 3) = u11 - u12 - u13 + b;                                         \\
        }                                                                                 \\
    }                                                                                     \\
    /* dM (16 rows, stride ms) = A dY Aᵀ, e (m, 4): tile k's dY e00 e01 e10 e11 */      \\
    static void wg_output_adjoint_##S(const T* restrict e,                               \\
                                      T* restrict dM, Py_ssize_t ms, Py_ssize_t m) {     \\
        _Pragma("GCC ivdep")                                                              \\
        for (Py_ssize_t k = 0; k < m; k++) {                                             \\
            T e00 = WG_T(e, 4, 0), e01 = WG_T(e, 4, 1);                                 \\
            T e10 = WG_T(e, 4, 2), e11 = WG_T(e, 4, 3);                                 \\
            /* A dY: rows (a_i, b_i) */                                                   \\
            T a0 = e00, b0 = e01, a1 = e00 + e10, b1 = e01 + e11;                         \\
            T a2 = e00 - e10, b2 = e01 - e11, a3 = -e10, b3 = -e11;                       \\
            /* (A dY) Aᵀ */                                                               \\
            WG_L(dM, ms, 0) = a0;  WG_L(dM, ms, 1) = a0 + b0;                             \\
            WG_L(dM, ms, 2) = a0 - b0;  WG_L(dM, ms, 3) = -b0;                            \\
            WG_L(dM, ms, 4) = a1;  WG_L(dM, ms, 5) = a1 + b1;                             \\
            WG_L(dM, ms, 6) = a1 - b1;  WG_L(dM, ms, 7) = -b1;                            \\
            WG_L(dM, ms, 8) = a2;  WG_L(dM, ms, 9) = a2 + b2;                             \\
            WG_L(dM, ms, 10) = a2 - b2; WG_L(dM, ms, 11) = -b2;                           \\
            WG_L(dM, ms, 12) = a3; WG_L(dM, ms, 13) = a3 + b3;                            \\
            WG_L(dM, ms, 14) = a3 - b3; WG_L(dM, ms, 15) = -b3;                           \\
        }                                                                                 \\
    }
    MINIDL_WINOGRAD_ARITH(float, f)
    MINIDL_WINOGRAD_ARITH(double, d)
    """
    void wg_input_arith_f(const float* d, float* v, Py_ssize_t vs, Py_ssize_t m) noexcept nogil
    void wg_input_arith_d(const double* d, double* v, Py_ssize_t vs, Py_ssize_t m) noexcept nogil
    void wg_output_arith_f(const float* M, Py_ssize_t ms, float b, float* o,
                           Py_ssize_t m) noexcept nogil
    void wg_output_arith_d(const double* M, Py_ssize_t ms, double b, double* o,
                           Py_ssize_t m) noexcept nogil
    void wg_output_adjoint_f(const float* e, float* dM, Py_ssize_t ms, Py_ssize_t m) noexcept nogil
    void wg_output_adjoint_d(const double* e, double* dM, Py_ssize_t ms,
                             Py_ssize_t m) noexcept nogil

cdef enum:
    # Elements of one block's V + M (per thread): 2^17 float32 = 512 KiB stays in L2
    # with U; measured best among 2^15..2^18.
    BLOCK_BUDGET = 1 << 17
    MIN_BLOCK_TILES = 16
    # the weight gradient's GEMMs sum over the tiles (k = tb): longer blocks amortise
    # reading and writing the (C, F) result
    WEIGHT_BLOCK_BUDGET = 1 << 18
    WEIGHT_MAX_BLOCK_TILES = 512
    MAX_BLOCK_TILES = 256
    XI_PAD = 16
    # Up to this many elements per thread, a block's input planes are first copied into
    # zero-padded planes, so that every tile reads four plain rows (no masked edge
    # gather): LeNet's 4x4 planes with padding 1 have no tile inside the plane at all.
    PAD_BUDGET = 1 << 15


cdef struct Plan:
    int N, C, H, W, F, Ho, Wo, ph, pw
    int tH, tW              # tiles per column / row of one output plane
    Py_ssize_t P, T         # tiles per sample, all tiles
    Py_ssize_t tb, nblocks  # tiles per block, blocks
    Py_ssize_t vs, ms       # ξ strides of a block's V (C, tb) and M (F, tb)
    Py_ssize_t buf_len      # per thread: V, M, scratch (16, tb), padded planes (floating)
    int Hp, Wp              # a zero-padded plane covering every tile's 4x4 patch
    Py_ssize_t pad_len      # padded planes one block needs (0: gather from x, masked)


cdef Plan _plan(int N, int C, int H, int W, int F, int Ho, int Wo, int ph, int pw,
                Py_ssize_t budget, Py_ssize_t max_tiles=MAX_BLOCK_TILES) noexcept:
    """Tiles and blocks of a problem (input (N, C, H, W) -> output (N, F, Ho, Wo))."""
    cdef Plan p
    p.N = N; p.C = C; p.H = H; p.W = W; p.F = F; p.Ho = Ho; p.Wo = Wo
    p.ph = ph; p.pw = pw
    p.tH = (Ho + 1) // 2
    p.tW = (Wo + 1) // 2
    p.P = <Py_ssize_t>p.tH * p.tW
    p.T = <Py_ssize_t>N * p.P
    cdef Py_ssize_t tb = budget // (16 * (<Py_ssize_t>C + F))
    tb -= tb % 8
    if tb < MIN_BLOCK_TILES:
        tb = MIN_BLOCK_TILES
    if tb > max_tiles:
        tb = max_tiles
    if p.T > 0:
        p.nblocks = (p.T + tb - 1) // tb
        tb = (p.T + p.nblocks - 1) // p.nblocks   # evened out
    else:
        p.nblocks = 0
    p.tb = tb if tb > 0 else 1
    p.vs = <Py_ssize_t>C * p.tb + XI_PAD
    p.ms = <Py_ssize_t>F * p.tb + XI_PAD
    p.buf_len = 16 * (p.vs + p.ms) + 16 * p.tb
    # A block's tiles span at most ns samples; their planes, padded, in PAD_BUDGET?
    p.Hp = 2 * p.tH + 2
    p.Wp = 2 * p.tW + 2
    cdef Py_ssize_t ns = (p.tb + p.P - 1) // p.P + 1 if p.P > 0 else 1
    if ns > N:
        ns = N
    p.pad_len = ns * p.Hp * p.Wp
    if p.pad_len > PAD_BUDGET:
        p.pad_len = 0
    p.buf_len += p.pad_len
    return p


cdef inline double _cost(const Plan* p) noexcept nogil:
    """Work in choose_threads' unit (element moves): the transforms' moves plus the
    GEMMs' multiply-adds, which BLAS does ~16 per move's time."""
    return <double>p.T * 16 * ((<double>p.C + p.F) + <double>p.C * p.F / 16)




# --------------------------------------------------------------- the three transforms

cdef inline Py_ssize_t _u_stride(int F, int C) noexcept nogil:
    """ξ stride of U and dU (16, F, C): padded, since F*C is often a multiple of 1024 and
    16 rows a multiple of 4 KiB apart fall in one L1 set (measured: the transform of a
    64x32 weight took 110 us unpadded, 4 us padded)."""
    return <Py_ssize_t>F * C + XI_PAD


cdef void _weight_transform(const floating* w, floating* U, int F, int C) noexcept nogil:
    """U[ξ, f, c] = (G w[f, c] Gᵀ)[ξ], w (F, C, 3, 3) -> U (16, F, C), ξ stride
    _u_stride."""
    cdef Py_ssize_t FC = _u_stride(F, C), fc
    cdef const floating* g
    cdef floating a[12]
    cdef int r, s
    for fc in range(<Py_ssize_t>F * C):
        g = w + 9 * fc
        for s in range(3):          # G g (4x3)
            a[s] = g[s]
            a[3 + s] = (g[s] + g[3 + s] + g[6 + s]) * <floating>0.5
            a[6 + s] = (g[s] - g[3 + s] + g[6 + s]) * <floating>0.5
            a[9 + s] = g[6 + s]
        for r in range(4):          # (G g) Gᵀ (4x4)
            U[(4 * r + 0) * FC + fc] = a[3 * r]
            U[(4 * r + 1) * FC + fc] = (a[3 * r] + a[3 * r + 1] + a[3 * r + 2]) * <floating>0.5
            U[(4 * r + 2) * FC + fc] = (a[3 * r] - a[3 * r + 1] + a[3 * r + 2]) * <floating>0.5
            U[(4 * r + 3) * FC + fc] = a[3 * r + 2]


cdef void _weight_untransform(const floating* dU, floating* dw, int F, int C) noexcept nogil:
    """dw[f, c] = Gᵀ dU[:, f, c] G (the adjoint of _weight_transform), dU (16, F, C),
    ξ stride _u_stride."""
    cdef Py_ssize_t FC = _u_stride(F, C), fc
    cdef floating u[16]
    cdef floating a[12]
    cdef floating* g
    cdef int r, s
    for fc in range(<Py_ssize_t>F * C):
        for r in range(16):
            u[r] = dU[r * FC + fc]
        for s in range(4):          # Gᵀ dU (3x4)
            a[s] = u[s] + (u[4 + s] + u[8 + s]) * <floating>0.5
            a[4 + s] = (u[4 + s] - u[8 + s]) * <floating>0.5
            a[8 + s] = (u[4 + s] + u[8 + s]) * <floating>0.5 + u[12 + s]
        g = dw + 9 * fc
        for r in range(3):          # (Gᵀ dU) G (3x3)
            g[3 * r] = a[4 * r] + (a[4 * r + 1] + a[4 * r + 2]) * <floating>0.5
            g[3 * r + 1] = (a[4 * r + 1] - a[4 * r + 2]) * <floating>0.5
            g[3 * r + 2] = (a[4 * r + 1] + a[4 * r + 2]) * <floating>0.5 + a[4 * r + 3]


cdef struct TileWalk:
    Py_ssize_t n     # sample
    int oh, ow       # top-left output position of the current tile


cdef inline void _walk_start(const Plan* p, Py_ssize_t t, TileWalk* w) noexcept nogil:
    """Position ``w`` on global tile t (t = n*P + th*tW + tw)."""
    cdef Py_ssize_t r = t % p.P
    w.n = t // p.P
    w.oh = 2 * <int>(r // p.tW)
    w.ow = 2 * <int>(r % p.tW)


cdef inline void _walk_next(const Plan* p, TileWalk* w) noexcept nogil:
    """The next tile in global order (no division)."""
    w.ow += 2
    if w.ow >= 2 * p.tW:
        w.ow = 0
        w.oh += 2
        if w.oh >= 2 * p.tH:
            w.oh = 0
            w.n += 1


cdef struct TileInfo:
    Py_ssize_t off          # x offset of the patch's top-left, n*C*H*W + ih0*W + iw0 ...
    bint inside             # ... when the whole patch lies in the plane; otherwise
    Py_ssize_t base         # n*C*H*W, and entry i of the patch reads plane[idx[i]]
    int idx[16]             # (clamped into the plane: always a valid address) and is
    unsigned int mask       # kept if bit i of mask is set, else zero (padding)
    Py_ssize_t yoff         # output offset of the tile's top-left, n*F*Ho*Wo + oh*Wo + ow
    bint right, down        # the tile's right column / bottom row lie in the output
    Py_ssize_t poff         # offset of the patch in the block's padded planes
    int h0, h1              # entry j: the input rows [h0, h1) that the block's tiles of
                            # its j-th sample read (padded-plane method)


cdef void _tile_table(const Plan* p, Py_ssize_t t0, Py_ssize_t m,
                      TileInfo* info) noexcept nogil:
    """Where tiles t0..t0+m-1 read their 4x4 input patches and write their 2x2 outputs
    (the same for every channel)."""
    cdef Py_ssize_t k, cplane = <Py_ssize_t>p.C * p.H * p.W
    cdef Py_ssize_t fplanes = <Py_ssize_t>p.F * p.Ho * p.Wo
    cdef int ih0, iw0, ih, iw, r, s, H = p.H, W = p.W
    cdef Py_ssize_t n0 = t0 // p.P if p.P > 0 else 0, j, HpWp = <Py_ssize_t>p.Hp * p.Wp
    cdef TileWalk tw
    cdef TileInfo* ti
    _walk_start(p, t0, &tw)
    for k in range(m):
        ti = &info[k]
        j = tw.n - n0
        ti.poff = j * HpWp + <Py_ssize_t>tw.oh * p.Wp + tw.ow
        ih0 = tw.oh - p.ph
        ih = ih0 + 4 if ih0 + 4 < H else H
        if k == 0 or j != info[k - 1].poff // HpWp:   # first tile of its sample
            info[j].h0 = ih0 if ih0 > 0 else 0
        info[j].h1 = ih                             # tiles come in row order
        ti.yoff = tw.n * fplanes + <Py_ssize_t>tw.oh * p.Wo + tw.ow
        ti.right = tw.ow + 1 < p.Wo
        ti.down = tw.oh + 1 < p.Ho
        ih0 = tw.oh - p.ph
        iw0 = tw.ow - p.pw
        ti.base = tw.n * cplane
        ti.off = ti.base + <Py_ssize_t>ih0 * W + iw0
        ti.inside = ih0 >= 0 and ih0 + 4 <= H and iw0 >= 0 and iw0 + 4 <= W
        ti.mask = 0
        if not ti.inside:
            for r in range(4):
                for s in range(4):
                    ih = ih0 + r
                    iw = iw0 + s
                    if ih >= 0 and ih < H and iw >= 0 and iw < W:
                        ti.mask |= 1u << (4 * r + s)
                    ih = 0 if ih < 0 else (H - 1 if ih >= H else ih)
                    iw = 0 if iw < 0 else (W - 1 if iw >= W else iw)
                    ti.idx[4 * r + s] = ih * W + iw
        _walk_next(p, &tw)


cdef void _input_transform_padded(const Plan* p, const floating* x, Py_ssize_t t0,
                                  Py_ssize_t m, floating* V, floating* D,
                                  const TileInfo* info, floating* pad) noexcept nogil:
    """_input_transform through zero-padded copies of the block's planes, ``pad``
    (p.pad_len): every patch is then four plain rows (info: _tile_table's)."""
    cdef Py_ssize_t k, j, plane = <Py_ssize_t>p.H * p.W, HpWp = <Py_ssize_t>p.Hp * p.Wp
    cdef Py_ssize_t n0 = t0 // p.P
    cdef Py_ssize_t ns = (t0 + m - 1) // p.P - n0 + 1
    cdef int c, h, e, W = p.W, Wp = p.Wp
    cdef const floating* src
    cdef const floating* row
    cdef floating* dst
    cdef floating* d
    # the padding stays zero: only the planes' interiors are rewritten per channel
    memset(pad, 0, <size_t>(ns * HpWp) * sizeof(floating))
    for c in range(p.C):
        for j in range(ns):
            src = x + ((n0 + j) * p.C + c) * plane
            dst = pad + j * HpWp + <Py_ssize_t>p.ph * Wp + p.pw
            for h in range(info[j].h0, info[j].h1):
                if W <= 16:
                    for e in range(W):
                        dst[h * Wp + e] = src[h * W + e]
                else:
                    memcpy(dst + h * Wp, src + h * W, W * sizeof(floating))
        for k in range(m):
            row = pad + info[k].poff
            d = D + 16 * k
            memcpy(d, row, 4 * sizeof(floating))
            memcpy(d + 4, row + Wp, 4 * sizeof(floating))
            memcpy(d + 8, row + 2 * Wp, 4 * sizeof(floating))
            memcpy(d + 12, row + 3 * Wp, 4 * sizeof(floating))
        if floating is float:
            wg_input_arith_f(D, V + <Py_ssize_t>c * p.tb, p.vs, m)
        else:
            wg_input_arith_d(D, V + <Py_ssize_t>c * p.tb, p.vs, m)


cdef void _input_transform(const Plan* p, const floating* x, Py_ssize_t t0, Py_ssize_t m,
                           floating* V, floating* D, TileInfo* info) noexcept nogil:
    """V[ξ, c, k] = (Bᵀ d B)[ξ] for tiles t0..t0+m-1 of x (N, C, H, W), V ξ-stride p.vs,
    row stride p.tb.  Per channel, the tiles' 4x4 patches are gathered into the scratch
    D (m, 16) (four short row copies per tile inside the plane, a branch-free masked
    gather at its edges; or, for small planes, four row copies from zero-padded copies
    of the planes), then transformed all at once."""
    cdef Py_ssize_t k, plane = <Py_ssize_t>p.H * p.W
    cdef int c, i, W = p.W
    cdef unsigned int mask
    cdef floating v
    cdef const floating* src
    cdef const floating* row
    cdef floating* d
    cdef TileInfo* ti
    _tile_table(p, t0, m, info)
    if p.pad_len > 0:
        _input_transform_padded(p, x, t0, m, V, D, info, D + 16 * p.tb)
        return
    for c in range(p.C):
        src = x + c * plane
        for k in range(m):
            ti = &info[k]
            d = D + 16 * k
            if ti.inside:
                row = src + ti.off
                memcpy(d, row, 4 * sizeof(floating))
                memcpy(d + 4, row + W, 4 * sizeof(floating))
                memcpy(d + 8, row + 2 * W, 4 * sizeof(floating))
                memcpy(d + 12, row + 3 * W, 4 * sizeof(floating))
            else:
                row = src + ti.base
                mask = ti.mask
                for i in range(16):
                    v = row[ti.idx[i]]
                    d[i] = v if (mask >> i) & 1u else 0
        if floating is float:
            wg_input_arith_f(D, V + <Py_ssize_t>c * p.tb, p.vs, m)
        else:
            wg_input_arith_d(D, V + <Py_ssize_t>c * p.tb, p.vs, m)


cdef void _output_transform(const Plan* p, const floating* M, const floating* bias,
                            floating* y, Py_ssize_t m, floating* O,
                            const TileInfo* info) noexcept nogil:
    """y tiles of the block (info: _tile_table's) = Aᵀ M A + bias, y (N, F, Ho, Wo),
    clipped at the edges.  Per filter, all tiles' 2x2 outputs are computed into the
    scratch O (m, 4), then scattered."""
    cdef floating b
    cdef Py_ssize_t k, HoWo = <Py_ssize_t>p.Ho * p.Wo
    cdef int f, Wo = p.Wo
    cdef floating* yf
    cdef floating* dst
    cdef const floating* o
    cdef const TileInfo* ti
    for f in range(p.F):
        b = bias[f] if bias != NULL else 0
        if floating is float:
            wg_output_arith_f(M + <Py_ssize_t>f * p.tb, p.ms, b, O, m)
        else:
            wg_output_arith_d(M + <Py_ssize_t>f * p.tb, p.ms, b, O, m)
        yf = y + f * HoWo
        for k in range(m):
            ti = &info[k]
            dst = yf + ti.yoff
            o = O + 4 * k
            if ti.right and ti.down:
                memcpy(dst, o, 2 * sizeof(floating))
                memcpy(dst + Wo, o + 2, 2 * sizeof(floating))
            else:
                dst[0] = o[0]
                if ti.right:
                    dst[1] = o[1]
                if ti.down:
                    dst[Wo] = o[2]
                    if ti.right:
                        dst[Wo + 1] = o[3]


cdef void _output_untransform(const Plan* p, const floating* dy, floating* dM,
                              double* db, Py_ssize_t m, floating* E,
                              const TileInfo* info) noexcept nogil:
    """dM[ξ, f, k] = (A dY_tile Aᵀ)[ξ] for the block's tiles (info: _tile_table's), the
    adjoint of _output_transform (dY outside the plane is zero), via the scratch E (m, 4)
    of gathered 2x2 dY tiles; db[f] (if not NULL) += the tiles' dY sum, in a fixed
    order."""
    cdef floating e00, e01, e10, e11
    cdef double acc[2]
    cdef Py_ssize_t k, HoWo = <Py_ssize_t>p.Ho * p.Wo
    cdef int f, Wo = p.Wo
    cdef const floating* dyf
    cdef const floating* src
    cdef floating* e
    cdef const TileInfo* ti
    for f in range(p.F):
        # two independent sums (even and odd tiles): one chain of double adds would
        # wait on each add
        acc[0] = 0
        acc[1] = 0
        dyf = dy + f * HoWo
        for k in range(m):
            ti = &info[k]
            src = dyf + ti.yoff
            e00 = src[0]
            e01 = src[1] if ti.right else 0
            e10 = src[Wo] if ti.down else 0
            e11 = src[Wo + 1] if (ti.right and ti.down) else 0
            acc[k & 1] += (<double>e00 + e01) + (<double>e10 + e11)
            e = E + 4 * k
            e[0] = e00
            e[1] = e01
            e[2] = e10
            e[3] = e11
        if db != NULL:
            db[f] += acc[0] + acc[1]
        if floating is float:
            wg_output_adjoint_f(E, dM + <Py_ssize_t>f * p.tb, p.ms, m)
        else:
            wg_output_adjoint_d(E, dM + <Py_ssize_t>f * p.tb, p.ms, m)


# ---------------------------------------------------------------------------- forward

cdef void _forward_block(const Plan* p, const floating* x, const floating* U,
                         const floating* bias, floating* y, Py_ssize_t blk,
                         floating* buf, TileInfo* info) noexcept nogil:
    cdef Py_ssize_t t0 = blk * p.tb
    cdef Py_ssize_t m = p.tb if t0 + p.tb <= p.T else p.T - t0
    cdef floating* V = buf
    cdef floating* M = buf + 16 * p.vs
    cdef Py_ssize_t FC = _u_stride(p.F, p.C)
    cdef int xi
    cdef floating* scratch = buf + 16 * (p.vs + p.ms)
    _input_transform(p, x, t0, m, V, scratch, info)
    for xi in range(16):   # M[ξ] (F, m) = U[ξ] (F, C) @ V[ξ] (C, m)
        gemm(c'N', c'N', <int>m, p.F, p.C, <floating>1, V + xi * p.vs, <int>p.tb,
             U + xi * FC, p.C, <floating>0, M + xi * p.ms, <int>p.tb)
    _output_transform(p, M, bias, y, m, scratch, info)


cdef _forward(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
              const floating[::1] bias, floating[:, :, :, ::1] y, Plan p, int num_threads):
    cdef const floating* bp = NULL
    cdef Py_ssize_t blk
    cdef int nt = choose_threads(num_threads, _cost(&p), min(p.nblocks, split_units(_cost(&p))))
    cdef floating* U = <floating*>malloc(<size_t>16 * _u_stride(p.F, p.C) * sizeof(floating))
    cdef floating* buffers = <floating*>malloc(<size_t>nt * p.buf_len * sizeof(floating))
    cdef TileInfo* infos = <TileInfo*>malloc(<size_t>nt * p.tb * sizeof(TileInfo))
    cdef floating* buf
    if U == NULL or buffers == NULL or infos == NULL:
        free(U); free(buffers); free(infos)
        raise MemoryError("minidl winograd conv: cannot allocate its buffers")
    if bias is not None:
        bp = &bias[0]
    with nogil:
        _weight_transform(&w[0, 0, 0, 0], U, p.F, p.C)
        for blk in prange(p.nblocks, num_threads=nt, schedule='static'):
            buf = buffers + threadid() * p.buf_len
            _forward_block(&p, &x[0, 0, 0, 0], U, bp, &y[0, 0, 0, 0], blk, buf,
                           infos + threadid() * p.tb)
    free(U)
    free(buffers)
    free(infos)


cdef _run_forward(x, w, bias, y, Plan p, int num_threads):
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT:
        _forward[float](x, w, bias, y, p, num_threads)
    else:
        _forward[double](x, w, bias, y, p, num_threads)


def winograd3x3_forward(x, weight, bias, padding, int num_threads):
    """y (N, F, Ho, Wo) = weight (F, C, 3, 3) ⋆ x (N, C, H, W) + bias (F,) or None,
    stride 1, padding (ph, pw) (each <= 2), Ho = H + 2*ph - 2, Wo = W + 2*pw - 2."""
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef int F = weight.shape[0], ph = padding[0], pw = padding[1]
    cdef Plan p = _plan(N, C, H, W, F, H + 2 * ph - 2, W + 2 * pw - 2, ph, pw, BLOCK_BUDGET)
    y = np.empty((N, F, p.Ho, p.Wo), dtype=x.dtype)
    if y.size == 0:
        return y
    if C == 0:
        y[...] = 0 if bias is None else bias.reshape(-1, 1, 1)
        return y
    _run_forward(x, weight, bias, y, p, num_threads)
    return y


def winograd3x3_backward_input(grad_out, weight, input_shape, padding, int num_threads):
    """grad_input (N, C, H, W) from grad_out (N, F, Ho, Wo) and weight (F, C, 3, 3):
    the forward on grad_out with the weight transposed to (C, F, 3, 3) and rotated by
    180 degrees, padding (2 - ph, 2 - pw)."""
    cdef int N = input_shape[0], C = input_shape[1], H = input_shape[2], W = input_shape[3]
    cdef int F = weight.shape[0], ph = 2 - padding[0], pw = 2 - padding[1]
    cdef int Ho = grad_out.shape[2], Wo = grad_out.shape[3]
    cdef Plan p = _plan(N, F, Ho, Wo, C, H, W, ph, pw, BLOCK_BUDGET)
    dx = np.empty((N, C, H, W), dtype=grad_out.dtype)
    if dx.size == 0:
        return dx
    if F == 0:
        dx.fill(0)
        return dx
    w_rot = np.ascontiguousarray(weight.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
    _run_forward(grad_out, w_rot, None, dx, p, num_threads)
    return dx


# -------------------------------------------------------------------- backward: dW, db

cdef void _weight_grad_chunk(const Plan* p, const floating* x, const floating* dy,
                             Py_ssize_t b0, Py_ssize_t b1, floating* dU, double* db,
                             floating* buf, TileInfo* info) noexcept nogil:
    """dU (16, F, C) = Σ over blocks b0..b1-1 of dM[ξ] @ V[ξ]ᵀ (overwritten);
    db (if not NULL) += Σ dY over those blocks."""
    cdef floating* V = buf
    cdef floating* dM = buf + 16 * p.vs
    cdef floating* scratch = buf + 16 * (p.vs + p.ms)
    cdef Py_ssize_t FC = _u_stride(p.F, p.C), blk, t0, m
    cdef floating beta
    cdef int xi
    for blk in range(b0, b1):
        t0 = blk * p.tb
        m = p.tb if t0 + p.tb <= p.T else p.T - t0
        _input_transform(p, x, t0, m, V, scratch, info)
        _output_untransform(p, dy, dM, db, m, scratch, info)
        beta = 0 if blk == b0 else 1
        for xi in range(16):   # dU[ξ] (F, C) += dM[ξ] (F, m) @ V[ξ]ᵀ (m, C)
            gemm(c'T', c'N', p.C, p.F, <int>m, <floating>1, V + xi * p.vs, <int>p.tb,
                 dM + xi * p.ms, <int>p.tb, beta, dU + xi * FC, p.C)


cdef _backward_weight(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] dy,
                      floating[:, :, :, ::1] dw, floating[::1] db, Plan p, int num_threads):
    cdef Py_ssize_t usize = 16 * _u_stride(p.F, p.C)
    # Number of chunks (partials): a function of the problem only, never of the threads.
    cdef Py_ssize_t nchunks = partial_chunks(_cost(&p), usize, p.nblocks)
    cdef int nt = choose_threads(num_threads, _cost(&p), nchunks)
    cdef floating* buffers = <floating*>malloc(<size_t>nt * p.buf_len * sizeof(floating))
    cdef floating* partials = <floating*>calloc(<size_t>nchunks * usize, sizeof(floating))
    cdef TileInfo* infos = <TileInfo*>malloc(<size_t>nt * p.tb * sizeof(TileInfo))
    cdef double* dbp = NULL
    cdef double* dbc
    cdef floating* buf
    cdef Py_ssize_t ch
    if db is not None:
        dbp = <double*>calloc(nchunks * p.F, sizeof(double))
    if (buffers == NULL or partials == NULL or infos == NULL
            or (db is not None and dbp == NULL)):
        free(buffers); free(partials); free(dbp); free(infos)
        raise MemoryError("minidl winograd conv: cannot allocate weight-gradient buffers")
    with nogil:
        for ch in prange(nchunks, num_threads=nt, schedule='static'):
            buf = buffers + threadid() * p.buf_len
            dbc = dbp + ch * p.F if dbp != NULL else NULL
            _weight_grad_chunk(&p, &x[0, 0, 0, 0], &dy[0, 0, 0, 0],
                               ch * p.nblocks // nchunks, (ch + 1) * p.nblocks // nchunks,
                               partials + ch * usize, dbc, buf, infos + threadid() * p.tb)
        add_partials(partials, partials + usize, nchunks - 1, usize)
        _weight_untransform(partials, &dw[0, 0, 0, 0], p.F, p.C)
        if dbp != NULL:
            sum_bias_partials(dbp, nchunks, p.F, &db[0])
    free(buffers)
    free(partials)
    free(dbp)
    free(infos)


def winograd3x3_backward_weight(x, grad_out, padding, bint need_bias, int num_threads):
    """(grad_weight (F, C, 3, 3), grad_bias (F,) or None) from x (N, C, H, W) and
    grad_out (N, F, Ho, Wo) of the stride-1 3x3 convolution with padding (ph, pw)."""
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef int F = grad_out.shape[1], ph = padding[0], pw = padding[1]
    cdef Plan p = _plan(N, C, H, W, F, grad_out.shape[2], grad_out.shape[3], ph, pw,
                        WEIGHT_BLOCK_BUDGET, WEIGHT_MAX_BLOCK_TILES)
    dw = np.empty((F, C, 3, 3), dtype=x.dtype)
    db = np.empty(F, dtype=x.dtype) if need_bias else None
    if p.T == 0 or dw.size == 0:
        dw.fill(0)
        if db is not None:
            db[...] = grad_out.sum(axis=(0, 2, 3))
        return dw, db
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT:
        _backward_weight[float](x, grad_out, dw, db, p, num_threads)
    else:
        _backward_weight[double](x, grad_out, dw, db, p, num_threads)
    return dw, db


def planned_threads():
    """Threads the last call of this module's kernels planned to use (for tests)."""
    return minidl_planned_threads
