"""Winograd convolution: F(2x2, 3x3), F(4x4, 3x3) and F(4x4, 5x5); stride 1, dilation 1,
groups 1.

Cross-correlation as PyTorch's conv2d (no flip), x (N, C, H, W), w (F, C, k, k) (k = 3 or
5), y (N, F, Ho, Wo) with Ho = H + 2*ph - k + 1, Wo = W + 2*pw - k + 1.

The maths (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks").  The
output is cut into r x r tiles; tile (th, tw) of sample n reads the a x a input patch d,
a = r + k - 1, whose top-left corner is (r*th - ph, r*tw - pw) (reads outside the plane
are zeros: padding).  For F(2x2, 3x3) (a = 4):

    y_tile (2x2) = Aᵀ [ Σ_c U[f, c] ⊙ V[c] ] A,   U = G g Gᵀ (4x4),   V = Bᵀ d B (4x4)

          | 1  0 -1  0 |          | 1    0    0  |
    Bᵀ =  | 0  1  1  0 |     G =  | 1/2  1/2  1/2|     Aᵀ = | 1  1  1  0 |
          | 0 -1  1  0 |          | 1/2 -1/2  1/2|          | 0  1 -1 -1 |
          | 0  1  0 -1 |          | 0    0    1  |

and likewise with the 6x6 and 8x8 matrices of F(4x4, 3x3) and F(4x4, 5x5)
(winograd_arith.h; G here).

Each of the a*a positions ξ of a transformed tile is an independent matrix product over
channels: M[ξ] (F, T) = U[ξ] (F, C) @ V[ξ] (C, T), a²/r² multiplications per output
instead of k² (F(2x2, 3x3): 4 instead of 9; F(4x4, 3x3): 2.25 instead of 9; F(4x4,
5x5): 4 instead of 25).  Clipped at the edge when Ho or Wo is not a multiple of r (the
extra outputs are computed and dropped).

Layout.  U is (a*a, F, C).  Tiles are numbered over all samples, t = n*P + th*tW + tw
(P = tH*tW tiles per sample), so that small planes (4x4: 4 tiles) still give wide
GEMMs.  Tiles are processed in blocks of tb consecutive tiles (tb depends on C and F
only: a block's V and M stay in the L2 cache; numpy's GEMMs over all 4096 tiles of a
CIFAR layer at once ran at half the speed of blocks of 64-128).  Each thread owns its
block buffers: V (a*a, C, tb) and M (a*a, F, tb), each ξ slice padded by XI_PAD elements
(strides a multiple of 4 KiB alias in L1), a gather scratch and a table of where each
tile of the block reads and writes (the same for every channel).

    forward          V = Bᵀ d B per block;  M[ξ] = U[ξ] @ V[ξ];  y = Aᵀ M A + b
    backward input   the forward on dY with w' (C, F, k, k), w'[c, f] = rot180(w[f, c]),
                     and padding (k-1 - ph, k-1 - pw)  (stride 1, dilation 1, ph, pw <= k-1)
    backward weight  dM = A dY_tile Aᵀ (a x a per tile; outputs past Ho, Wo are zeros);
                     dU[ξ] (F, C) = Σ_blocks dM[ξ] (F, tb) @ V[ξ]ᵀ (tb, C);
                     dW = Gᵀ dU G;  db = Σ dY
Every product above is a row-major GEMM (_helpers.gemm; the channel-major plan's below:
wg_cm_gemm), but for float32 on AVX-512 the weight transform, which gathers 16 kernels
a vector straight from the layer's weight (transposed and rotated in place for the input
gradient: no copy).

Channel-major (Plan.cm, asked for with ``channel_major``: float32 on AVX2 + FMA or
AVX-512, F(4x4, 3x3) on 4x4 planes with padding 1, winograd_channel_major_fits; the
conv2 of LeNet() and of the LeNet-digits net, where minidl.ops.conv_plan's rule or a
measured table picks it).  Each plane is one tile and 16
contiguous values, so the transforms run across 8 or 16 channels (or filters) per vector
after a register transpose (winograd_cm.h), and the transposed operands make every GEMM
read rows: V[ξ] (tb, C), U[ξ] (C, F), M[ξ] = V[ξ] @ U[ξ] (tb, F), and the weight
gradient's dU[ξ] = dM[ξ]ᵀ @ V[ξ], which ran 1.7x faster than dM[ξ] @ V[ξ]ᵀ at 64 tiles.
These GEMMs (K = C or tiles, N = F or C, 36 per block) run on wg_cm_gemm, not BLAS: no
packing of the operands and no pass zeroing M first (faster on AVX2 and AVX-512 alike:
benchmarks/RESULTS.md).  Without AVX-512 the weight transform comes from a transposed
copy of the weight.

Determinism: blocks depend on the problem only; the weight gradient sums fixed chunks of
blocks (chunking depends on the problem size only, never on the thread count) into
their own partials, reduced in chunk order.  Every output is computed by the same
operations for any number of threads.
"""
import numpy as np
cimport numpy as cnp
from cython.parallel cimport prange, threadid
from libc.stdlib cimport free
from libc.string cimport memcpy, memset
from cython cimport floating

from minidl._kernels._helpers cimport (
    minidl_planned_threads, choose_threads, gemm, split_units, partial_chunks, add_partials,
    sum_bias_partials, scratch_alloc, cpu_level,
)

cnp.import_array()
wg_select_level(cpu_level())

# The per-tile arithmetic of the data transforms, vectorised across a block's tiles, is
# in C (winograd_arith.h) so that ``restrict`` and ``ivdep`` let the compiler vectorise
# it.  Gathering the patches tile-major, (m, ds), took the forward at N=64 64->32 18x18
# p0 from 7.9 to 4.5 ms (1 thread, F(2x2, 3x3)).
cdef extern from "winograd_arith.h" nogil:
    int wg_select_level(int level)
    void wg_input_f(int a, const float* d, Py_ssize_t ds, float* v, Py_ssize_t vs,
                    Py_ssize_t m)
    void wg_input_d(int a, const double* d, Py_ssize_t ds, double* v, Py_ssize_t vs,
                    Py_ssize_t m)
    void wg_output_f(int a, const float* M, Py_ssize_t ms, float b, float* o, Py_ssize_t m)
    void wg_output_d(int a, const double* M, Py_ssize_t ms, double b, double* o,
                     Py_ssize_t m)
    void wg_adjoint_f(int a, const float* e, Py_ssize_t es, float* dM, Py_ssize_t ms,
                      Py_ssize_t m)
    void wg_adjoint_d(int a, const double* e, Py_ssize_t es, double* dM, Py_ssize_t ms,
                      Py_ssize_t m)
    void wg_strided_copy_f(const float* src, Py_ssize_t stride, float* dst, Py_ssize_t n)
    void wg_strided_copy_d(const double* src, Py_ssize_t stride, double* dst, Py_ssize_t n)
    ctypedef struct wg_patch:
        Py_ssize_t off
        unsigned short rows[8]
    int wg_loads_patches()
    void wg_weight_gather_f(const float* w, Py_ssize_t wr, Py_ssize_t ws, Py_ssize_t wi,
                            Py_ssize_t wj, int R, int S, const float* G, int a, float* U,
                            Py_ssize_t us)
    void wg_load_patches_f(const float* src, const char* patches, Py_ssize_t stride,
                           Py_ssize_t pitch, int a, float* d, Py_ssize_t ds, Py_ssize_t m)

# the channel-major transforms (Plan.cm)
cdef extern from "winograd_cm.h" nogil:
    int wg_channel_major()
    void wg_cm_input_f(const float* x, const unsigned char* codes, int C, Py_ssize_t m,
                       float* v, Py_ssize_t vs, Py_ssize_t vt)
    void wg_cm_output_f(const float* M, Py_ssize_t ms, Py_ssize_t mt, const float* bias,
                        float* y, int F, Py_ssize_t m)
    int wg_cm_output_pool_f(const float* M, Py_ssize_t ms, Py_ssize_t mt, const float* bias,
                            float* yp, unsigned char* codes, int F, Py_ssize_t m, int relu)
    void wg_cm_adjoint_f(const float* dy, const unsigned char* codes, int F, Py_ssize_t m,
                         float* dM, Py_ssize_t ms, double* db)
    void wg_cm_gemm(bint trans_a, int m, int n, int k, const float* a, Py_ssize_t lda,
                    const float* b, Py_ssize_t ldb, float* c, Py_ssize_t ldc, int accumulate)

cdef enum:
    # Elements of one block's V + M (per thread): 2^17 float32 = 512 KiB stays in L2
    # with U; measured best among 2^15..2^18 (F(2x2, 3x3)).
    BLOCK_BUDGET = 1 << 17
    MIN_BLOCK_TILES = 16
    # the weight gradient's GEMMs sum over the tiles (k = tb): longer blocks amortise
    # reading and writing the (C, F) result
    WEIGHT_BLOCK_BUDGET = 1 << 18
    WEIGHT_MAX_BLOCK_TILES = 512
    MAX_BLOCK_TILES = 256
    XI_PAD = 16
    FITS_CHUNK = 1 << 16    # elements per parallel piece of fits_winograd's scan
    # Up to this many elements per thread, a block's input planes are first copied into
    # zero-padded planes, so that every tile reads plain rows (no masked edge gather):
    # LeNet's 4x4 planes with padding 1 have no tile inside the plane at all.
    PAD_BUDGET = 1 << 15
    MAX_PATCH = 64          # a*a for the largest tiling, F(4x4, 5x5)
    FLOAT_CM = 1            # _float_level's answers
    FLOAT_LOADS = 2


cdef struct Plan:
    int N, C, H, W, F, Ho, Wo, ph, pw
    int k                   # kernel side (3 or 5)
    int r, a, a2            # output tile side, input patch side r + k - 1, positions a*a
    int dr, ds              # a gathered patch's row pitch and size (winograd_arith.h)
    int tH, tW              # tiles per column / row of one output plane
    Py_ssize_t P, T         # tiles per sample, all tiles
    Py_ssize_t tb, nblocks  # tiles per block, blocks
    Py_ssize_t vs, ms       # ξ strides of a block's V (C, tb) and M (F, tb)
    Py_ssize_t buf_len      # per thread: V, M, scratch (ds, dst), padded planes (floating)
    int Hp, Wp              # a zero-padded plane covering every tile's a x a patch
    Py_ssize_t pad_len      # padded planes one block needs (0: gather from x, masked)
    bint whole              # one tile per sample, whose patch is its whole padded plane
    bint load               # float32: patches loaded position-major from the planes
    bint loads              # float32 where wg_loads_patches: dY tiles loaded position-
                            # major from the planes, the weight transform gathered
    Py_ssize_t dst          # load, loads: the scratch's position-major row stride
    Py_ssize_t nsp          # whole: the padded planes' row stride (ns rounded up to 16)
    bint cm                 # channel-major: V[ξ] (tb, C), M[ξ] (tb, F), U[ξ] (C, F)


cdef Plan _plan(int N, int C, int H, int W, int F, int Ho, int Wo, int ph, int pw, int k,
                int r, Py_ssize_t budget, Py_ssize_t max_tiles=MAX_BLOCK_TILES,
                int float_level=0, bint channel_major=False) noexcept:
    """Tiles and blocks of a problem (input (N, C, H, W) -> output (N, F, Ho, Wo)) with a
    k x k kernel and r x r output tiles; ``float_level``: what the data may use
    (_float_level); ``channel_major``: the channel-major plan, where it fits (p.cm says
    whether it does)."""
    cdef Plan p
    p.N = N; p.C = C; p.H = H; p.W = W; p.F = F; p.Ho = Ho; p.Wo = Wo
    p.ph = ph; p.pw = pw
    p.k = k
    p.r = r
    p.a = r + k - 1
    p.a2 = p.a * p.a
    p.dr = 4 if p.a == 4 else 8
    p.ds = p.dr * p.dr
    p.tH = (Ho + r - 1) // r
    p.tW = (Wo + r - 1) // r
    p.P = <Py_ssize_t>p.tH * p.tW
    p.T = <Py_ssize_t>N * p.P
    cdef Py_ssize_t tb = budget // (p.a2 * (<Py_ssize_t>C + F))
    tb -= tb % 8
    if tb < MIN_BLOCK_TILES:
        tb = MIN_BLOCK_TILES
    if tb > max_tiles:
        tb = max_tiles
    if p.T > 0:
        p.nblocks = (p.T + tb - 1) // tb
        tb = (p.T + p.nblocks - 1) // p.nblocks   # evened out, then whole vectors:
        tb = (tb + 15) // 16 * 16                  # rows of 30 tiles ran 1.4x slower
        p.nblocks = (p.T + tb - 1) // tb
    else:
        p.nblocks = 0
    p.tb = tb if tb > 0 else 1
    p.vs = <Py_ssize_t>C * p.tb + XI_PAD
    p.ms = <Py_ssize_t>F * p.tb + XI_PAD
    p.dst = (p.tb + 15) // 16 * 16
    p.buf_len = p.a2 * (p.vs + p.ms) + p.ds * p.dst
    # A block's tiles span at most ns samples; their planes, padded, in PAD_BUDGET?
    p.Hp = r * p.tH + k - 1
    p.Wp = r * p.tW + k - 1
    cdef Py_ssize_t ns = (p.tb + p.P - 1) // p.P + 1 if p.P > 0 else 1
    if ns > N:
        ns = N
    p.whole = p.P == 1 and p.Hp == p.a and p.Wp == p.a
    p.nsp = (ns + 15) // 16 * 16
    p.pad_len = (p.nsp if p.whole else ns) * p.Hp * p.Wp
    if p.pad_len > PAD_BUDGET:
        p.pad_len = 0
        p.whole = False
    # 4x4 planes, padding 1, F(4x4, 3x3): vectors across channels (wg_cm_*), if asked
    p.cm = (channel_major and float_level >= FLOAT_CM and p.P == 1 and p.a == 6
            and H == 4 and W == 4 and Ho == 4 and Wo == 4)
    if p.cm:
        p.whole = False
    p.loads = float_level >= FLOAT_LOADS
    p.load = p.loads and not p.whole and not p.cm
    if p.load or p.cm:
        p.pad_len = 0
    p.buf_len += p.pad_len
    return p


cdef inline double _cost(const Plan* p) noexcept nogil:
    """Work in choose_threads' unit (element moves): the transforms' moves plus the
    GEMMs' multiply-adds, which BLAS does ~16 per move's time."""
    return <double>p.T * p.a2 * ((<double>p.C + p.F) + <double>p.C * p.F / 16)


# --------------------------------------------------------------- the weight transform

# G (a x k) of each tiling, row-major (see winograd_arith.h for F(4x4, 3x3)'s).  F(4x4,
# 5x5)'s on the points 0, 1, -1, 2, -2, 1/2, -1/2, infinity: row i is (p^0 .. p^4) / Π(p - q)
# over the other finite points q (its first row negated, as is Bᵀ's), the last row e_5.
cdef double G2[12]
cdef double G4[18]
cdef double G45[40]
G2[:] = [1, 0, 0,  0.5, 0.5, 0.5,  0.5, -0.5, 0.5,  0, 0, 1]
G4[:] = [0.25, 0, 0,  -1.0 / 6, -1.0 / 6, -1.0 / 6,  -1.0 / 6, 1.0 / 6, -1.0 / 6,
         1.0 / 24, 1.0 / 12, 1.0 / 6,  1.0 / 24, -1.0 / 12, 1.0 / 6,  0, 0, 1]
G45[:] = [1, 0, 0, 0, 0,
          -2.0 / 9, -2.0 / 9, -2.0 / 9, -2.0 / 9, -2.0 / 9,
          -2.0 / 9, 2.0 / 9, -2.0 / 9, 2.0 / 9, -2.0 / 9,
          1.0 / 90, 1.0 / 45, 2.0 / 45, 4.0 / 45, 8.0 / 45,
          1.0 / 90, -1.0 / 45, 2.0 / 45, -4.0 / 45, 8.0 / 45,
          32.0 / 45, 16.0 / 45, 8.0 / 45, 4.0 / 45, 2.0 / 45,
          32.0 / 45, -16.0 / 45, 8.0 / 45, -4.0 / 45, 2.0 / 45,
          0, 0, 0, 0, 1]


cdef const double* G_BY_TILING[3]
G_BY_TILING[0] = &G2[0]
G_BY_TILING[1] = &G4[0]
G_BY_TILING[2] = &G45[0]


cdef float G_F[3][40]   # G_BY_TILING in float32, for wg_weight_gather_f
for _t, _n in ((0, 12), (1, 18), (2, 40)):
    for _j in range(_n):
        G_F[_t][_j] = <float>G_BY_TILING[_t][_j]


cdef inline int _tiling(int a) noexcept nogil:
    """0, 1, 2 for the tiling with a x a patches: F(2x2, 3x3), F(4x4, 3x3), F(4x4, 5x5)."""
    return 0 if a == 4 else (1 if a == 6 else 2)


cdef inline const double* _g_matrix(int a) noexcept nogil:
    """G (a x k) of the tiling with a x a patches."""
    return G_BY_TILING[_tiling(a)]


cdef inline Py_ssize_t _u_stride(int F, int C) noexcept nogil:
    """ξ stride of U and dU (a2, F, C): padded, since F*C is often a multiple of 1024 and
    rows a multiple of 4 KiB apart fall in one L1 set (measured: the transform of a
    64x32 weight took 110 us unpadded, 4 us padded)."""
    return <Py_ssize_t>F * C + XI_PAD


# U = G g Gᵀ for every (f, c) at once: flattened row-major, vec(U) = (G ⊗ G) vec(g), so the
# whole weight transform is one GEMM with the (a*a, k*k) Kronecker product, and its
# adjoint another (the per-pair scalar loops were latency-bound: 53 us of a 445 us
# F(4x4, 5x5) forward at N=64 6->16 12x12).  KRON_*[_tiling(a)].
cdef float KRON_F[3][64 * 25]
cdef double KRON_D[3][64 * 25]


def _fill_kron():
    for a, k in ((4, 3), (6, 3), (8, 5)):
        i = _tiling(a)
        g = _g_matrix(a)
        G = np.array([g[j] for j in range(a * k)]).reshape(a, k)
        K = np.kron(G, G).ravel()
        for j in range(K.size):
            KRON_F[i][j] = K[j]
            KRON_D[i][j] = K[j]


_fill_kron()


cdef inline const floating* _kron(floating* like, int a) noexcept nogil:
    """G ⊗ G (a*a, k*k), row-major, of the tiling with a x a patches."""
    cdef int i = _tiling(a)
    if floating is float:
        return &KRON_F[i][0]
    else:
        return &KRON_D[i][0]


cdef void _weight_transform(const floating* w, floating* U, int F, int C, int a,
                            int k) noexcept nogil:
    """U[ξ, f, c] = (G w[f, c] Gᵀ)[ξ], w (F, C, k, k) -> U (a*a, F, C), ξ stride
    _u_stride, G (a, k) of the tiling: U = (G ⊗ G) @ w.reshape(F*C, k*k)ᵀ."""
    cdef int FC = F * C, k2 = k * k
    gemm(c'N', c'T', a * a, FC, k2, <floating>1, _kron(U, a), k2, w, k2, <floating>0, U,
         <int>_u_stride(F, C))


cdef void _weight_untransform(const floating* dU, floating* dw, int F, int C, int a,
                              int k) noexcept nogil:
    """dw[f, c] = Gᵀ dU[:, f, c] G (the adjoint of _weight_transform), dU (a*a, F, C),
    ξ stride _u_stride, dw (F, C, k, k): dw.reshape(F*C, k*k) = dUᵀ @ (G ⊗ G)."""
    cdef int FC = F * C, k2 = k * k
    gemm(c'T', c'N', FC, k2, a * a, <floating>1, dU, <int>_u_stride(F, C),
         _kron(dw, a), k2, <floating>0, dw, k2)


# ------------------------------------------------------------- tiles and their patches

cdef struct TileWalk:
    Py_ssize_t n     # sample
    int oh, ow       # top-left output position of the current tile


cdef inline void _walk_start(const Plan* p, Py_ssize_t t, TileWalk* w) noexcept nogil:
    """Position ``w`` on global tile t (t = n*P + th*tW + tw)."""
    cdef Py_ssize_t q = t % p.P
    w.n = t // p.P
    w.oh = p.r * <int>(q // p.tW)
    w.ow = p.r * <int>(q % p.tW)


cdef inline void _walk_next(const Plan* p, TileWalk* w) noexcept nogil:
    """The next tile in global order (no division)."""
    w.ow += p.r
    if w.ow >= p.r * p.tW:
        w.ow = 0
        w.oh += p.r
        if w.oh >= p.r * p.tH:
            w.oh = 0
            w.n += 1


cdef struct TileInfo:
    wg_patch patch          # the patch in x's planes, for wg_load_patches_f (p.load)
    wg_patch out            # the output tile in the output planes (p.loads)
    Py_ssize_t off          # x offset of the patch's top-left, n*C*H*W + ih0*W + iw0 ...
    bint inside             # ... when the whole patch lies in the plane; otherwise
    Py_ssize_t base         # n*C*H*W, and entry i of the patch reads plane[idx[i]]
    int idx[MAX_PATCH]      # (clamped into the plane: always a valid address) and is
    unsigned long long mask # kept if bit i of mask is set, else zero (padding)
    Py_ssize_t yoff         # output offset of the tile's top-left, n*F*Ho*Wo + oh*Wo + ow
    int nr, nc              # rows and columns of the tile inside the output plane
    Py_ssize_t poff         # offset of the patch in the block's padded planes
    int h0, h1              # entry j: the input rows [h0, h1) that the block's tiles of
                            # its j-th sample read (padded-plane method)


cdef void _tile_table(const Plan* p, Py_ssize_t t0, Py_ssize_t m,
                      TileInfo* info) noexcept nogil:
    """Where tiles t0..t0+m-1 read their a x a input patches and write their r x r
    outputs (the same for every channel)."""
    cdef Py_ssize_t k, cplane = <Py_ssize_t>p.C * p.H * p.W
    cdef Py_ssize_t fplanes = <Py_ssize_t>p.F * p.Ho * p.Wo
    cdef int ih0, iw0, ih, iw, i, s, H = p.H, W = p.W, a = p.a
    cdef Py_ssize_t n0 = t0 // p.P if p.P > 0 else 0, j, HpWp = <Py_ssize_t>p.Hp * p.Wp
    cdef TileWalk tw
    cdef TileInfo* ti
    cdef unsigned short cols
    _walk_start(p, t0, &tw)
    for k in range(m):
        ti = &info[k]
        j = tw.n - n0
        ti.poff = j * HpWp + <Py_ssize_t>tw.oh * p.Wp + tw.ow
        ih0 = tw.oh - p.ph
        ih = ih0 + a if ih0 + a < H else H
        if k == 0 or j != info[k - 1].poff // HpWp:   # first tile of its sample
            info[j].h0 = ih0 if ih0 > 0 else 0
        info[j].h1 = ih                             # tiles come in row order
        ti.yoff = tw.n * fplanes + <Py_ssize_t>tw.oh * p.Wo + tw.ow
        ti.nr = p.r if tw.oh + p.r <= p.Ho else p.Ho - tw.oh
        ti.nc = p.r if tw.ow + p.r <= p.Wo else p.Wo - tw.ow
        if p.loads:
            ti.out.off = ti.yoff
            for i in range(8):
                ti.out.rows[i] = ((<unsigned short>1) << ti.nc) - 1 if i < ti.nr else 0
        iw0 = tw.ow - p.pw
        ti.base = tw.n * cplane
        ti.off = ti.base + <Py_ssize_t>ih0 * W + iw0
        ti.inside = ih0 >= 0 and ih0 + a <= H and iw0 >= 0 and iw0 + a <= W
        ti.mask = 0
        if p.load:
            ti.patch.off = ti.off
            cols = 0
            for s in range(a):
                if iw0 + s >= 0 and iw0 + s < W:
                    cols |= (<unsigned short>1) << s
            for i in range(8):
                ti.patch.rows[i] = cols if i < a and 0 <= ih0 + i < H else 0
        elif not ti.inside and p.pad_len == 0:   # the masked gather from x
            for i in range(a):
                for s in range(a):
                    ih = ih0 + i
                    iw = iw0 + s
                    if ih >= 0 and ih < H and iw >= 0 and iw < W:
                        ti.mask |= 1ULL << (a * i + s)
                    ih = 0 if ih < 0 else (H - 1 if ih >= H else ih)
                    iw = 0 if iw < 0 else (W - 1 if iw >= W else iw)
                    ti.idx[a * i + s] = ih * W + iw
        _walk_next(p, &tw)


cdef inline void _copy_rows(floating* dst, Py_ssize_t dst_stride, const floating* src,
                            Py_ssize_t src_stride, int rows, int n) noexcept nogil:
    """rows rows of n (2, 4, 6 or 8: copies of a constant size, inlined) from src to dst."""
    cdef int i
    if n == 8:
        for i in range(rows):
            memcpy(dst + i * dst_stride, src + i * src_stride, 8 * sizeof(floating))
    elif n == 4:
        for i in range(rows):
            memcpy(dst + i * dst_stride, src + i * src_stride, 4 * sizeof(floating))
    elif n == 6:
        for i in range(rows):
            memcpy(dst + i * dst_stride, src + i * src_stride, 6 * sizeof(floating))
    else:
        for i in range(rows):
            memcpy(dst + i * dst_stride, src + i * src_stride, 2 * sizeof(floating))


cdef inline void _input_arith(const Plan* p, const floating* D, Py_ssize_t rows,
                              floating* V, Py_ssize_t vxi, Py_ssize_t m) noexcept nogil:
    """V = Bᵀ d B for m patches D: tile-major (m, ds) if rows is 0, else position-major
    (a2, rows)."""
    if floating is float:
        wg_input_f(p.a, D, rows, V, vxi, m)
    else:
        wg_input_d(p.a, D, rows, V, vxi, m)


cdef void _input_transform_whole(const Plan* p, const floating* x, Py_ssize_t n0,
                                 Py_ssize_t ns, floating* V, Py_ssize_t vxi,
                                 Py_ssize_t vrow, floating* pad) noexcept nogil:
    """_input_transform when each of the block's ns samples n0.. is one tile whose
    patch is its whole zero-padded plane (p.whole): the planes are copied transposed,
    position by sample, into ``pad`` (Hp*Wp, nsp), which is already the position-major
    patch layout."""
    cdef Py_ssize_t plane = <Py_ssize_t>p.H * p.W, nsp = p.nsp, cplane = p.C * plane
    cdef int c, h, e, W = p.W
    cdef const floating* src
    cdef floating* dst
    # the padding stays zero: only the planes' interiors are rewritten per channel
    memset(pad, 0, <size_t>p.pad_len * sizeof(floating))
    for c in range(p.C):
        src = x + (n0 * p.C + c) * plane
        for h in range(p.H):
            dst = pad + ((h + p.ph) * p.Wp + p.pw) * nsp
            for e in range(W):
                if floating is float:
                    wg_strided_copy_f(src + h * W + e, cplane, dst + e * nsp, ns)
                else:
                    wg_strided_copy_d(src + h * W + e, cplane, dst + e * nsp, ns)
        _input_arith(p, pad, nsp, V + <Py_ssize_t>c * vrow, vxi, ns)


cdef void _input_transform_padded(const Plan* p, const floating* x, Py_ssize_t t0,
                                  Py_ssize_t m, floating* V, Py_ssize_t vxi,
                                  Py_ssize_t vrow, floating* D, const TileInfo* info,
                                  floating* pad) noexcept nogil:
    """_input_transform through zero-padded copies of the block's planes, ``pad``
    (p.pad_len): every patch is then a plain rows (info: _tile_table's)."""
    cdef Py_ssize_t k, j, plane = <Py_ssize_t>p.H * p.W, HpWp = <Py_ssize_t>p.Hp * p.Wp
    cdef Py_ssize_t n0 = t0 // p.P
    cdef Py_ssize_t ns = (t0 + m - 1) // p.P - n0 + 1
    cdef int c, h, e, W = p.W, Wp = p.Wp
    cdef const floating* src
    cdef floating* dst
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
            _copy_rows(D + p.ds * k, p.dr, pad + info[k].poff, Wp, p.a, p.a)
        _input_arith(p, D, 0, V + <Py_ssize_t>c * vrow, vxi, m)


cdef void _input_transform(const Plan* p, const floating* x, Py_ssize_t t0, Py_ssize_t m,
                           floating* V, Py_ssize_t vxi, Py_ssize_t vrow, floating* D,
                           TileInfo* info) noexcept nogil:
    """V[ξ, c, k] = (Bᵀ d B)[ξ] for tiles t0..t0+m-1 of x (N, C, H, W), V ξ-stride vxi,
    row stride vrow (a block's own V: p.vs, p.tb).  Per channel, the tiles' a x a
    patches are gathered into the scratch D, then transformed all at once: position-major
    (a2, dst) by wg_load_patches_f (float32 on AVX-512, p.load) or by copying planes
    that are one tile transposed (p.whole); else tile-major (m, ds), by a short row
    copies per tile inside the plane and a branch-free masked gather at its edges, or
    for small planes by row copies from zero-padded copies of the planes."""
    cdef Py_ssize_t k, plane = <Py_ssize_t>p.H * p.W
    cdef int c, i, s, a = p.a
    cdef unsigned long long mask
    cdef floating v
    cdef const floating* src
    cdef const floating* row
    cdef floating* d
    cdef TileInfo* ti
    _tile_table(p, t0, m, info)
    if floating is float and p.load:
        for c in range(p.C):
            wg_load_patches_f(x + c * plane, <const char*>&info[0].patch, sizeof(TileInfo),
                              p.W, a, D, p.dst, m)
            _input_arith(p, D, p.dst, V + <Py_ssize_t>c * vrow, vxi, m)
        return
    if p.whole:   # one tile per sample: tile k is sample t0 + k
        _input_transform_whole(p, x, t0, m, V, vxi, vrow, D + p.ds * p.dst)
        return
    if p.pad_len > 0:
        _input_transform_padded(p, x, t0, m, V, vxi, vrow, D, info, D + p.ds * p.dst)
        return
    for c in range(p.C):
        src = x + c * plane
        for k in range(m):
            ti = &info[k]
            d = D + p.ds * k
            if ti.inside:
                _copy_rows(d, p.dr, src + ti.off, p.W, a, a)
            else:
                row = src + ti.base
                mask = ti.mask
                for i in range(a):
                    for s in range(a):
                        v = row[ti.idx[a * i + s]]
                        d[p.dr * i + s] = v if (mask >> (a * i + s)) & 1ULL else 0
        _input_arith(p, D, 0, V + <Py_ssize_t>c * vrow, vxi, m)


cdef void _output_transform(const Plan* p, const floating* M, const floating* bias,
                            floating* y, Py_ssize_t m, floating* O,
                            const TileInfo* info) noexcept nogil:
    """y tiles of the block (info: _tile_table's) = Aᵀ M A + bias, y (N, F, Ho, Wo),
    clipped at the edges.  Per filter, all tiles' r x r outputs are computed into the
    scratch O (m, r*r), then scattered."""
    cdef floating b
    cdef Py_ssize_t k, HoWo = <Py_ssize_t>p.Ho * p.Wo
    cdef int f, i, s, r = p.r, Wo = p.Wo
    cdef floating* yf
    cdef floating* dst
    cdef const floating* o
    cdef const TileInfo* ti
    for f in range(p.F):
        b = bias[f] if bias != NULL else 0
        if floating is float:
            wg_output_f(p.a, M + <Py_ssize_t>f * p.tb, p.ms, b, O, m)
        else:
            wg_output_d(p.a, M + <Py_ssize_t>f * p.tb, p.ms, b, O, m)
        yf = y + f * HoWo
        for k in range(m):
            ti = &info[k]
            dst = yf + ti.yoff
            o = O + r * r * k
            if ti.nr == r and ti.nc == r:
                _copy_rows(dst, Wo, o, r, r, r)
            else:
                for i in range(ti.nr):
                    for s in range(ti.nc):
                        dst[i * Wo + s] = o[r * i + s]


cdef inline void _output_adjoint(const Plan* p, const floating* E, Py_ssize_t rows,
                                 floating* dM, Py_ssize_t m) noexcept nogil:
    """dM = A dY Aᵀ for m dY tiles E: tile-major (m, r*r) if rows is 0, else
    position-major (r*r, rows)."""
    if floating is float:
        wg_adjoint_f(p.a, E, rows, dM, p.ms, m)
    else:
        wg_adjoint_d(p.a, E, rows, dM, p.ms, m)


cdef inline void _tile_sums(const floating* E, Py_ssize_t rows, int rr, Py_ssize_t m,
                            double* acc) noexcept nogil:
    """acc[k & 1] += the sum of tile k's rr entries (position-major E, row stride rows),
    each tile summed in entry order, as the tile-major loop of _output_untransform does."""
    cdef double t[64]
    cdef Py_ssize_t k0, j, n
    cdef int i
    for k0 in range(0, m, 64):
        n = m - k0 if m - k0 < 64 else 64
        for j in range(n):
            t[j] = 0
        for i in range(rr):
            for j in range(n):
                t[j] = t[j] + E[i * rows + k0 + j]
        for j in range(n):
            acc[(k0 + j) & 1] += t[j]


cdef void _output_untransform(const Plan* p, const floating* dy, floating* dM,
                              double* db, Py_ssize_t m, floating* E,
                              const TileInfo* info) noexcept nogil:
    """dM[ξ, f, k] = (A dY_tile Aᵀ)[ξ] for the block's tiles (info: _tile_table's), the
    adjoint of _output_transform (dY outside the plane is zero), via the scratch E of
    gathered r x r dY tiles (position-major (r*r, dst) from wg_load_patches_f where
    p.loads, else tile-major (m, r*r)); db[f] (if not NULL) += the tiles' dY sum, in
    the same fixed order either way."""
    cdef double acc[2]
    cdef double tile_sum
    cdef Py_ssize_t k, HoWo = <Py_ssize_t>p.Ho * p.Wo
    cdef int f, i, s, r = p.r, rr = p.r * p.r, Wo = p.Wo
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
        if floating is float and p.loads:
            wg_load_patches_f(dyf, <const char*>&info[0].out, sizeof(TileInfo), Wo, r, E,
                              p.dst, m)
            if db != NULL:
                _tile_sums(E, p.dst, rr, m, acc)
                db[f] += acc[0] + acc[1]
            _output_adjoint(p, E, p.dst, dM + <Py_ssize_t>f * p.tb, m)
            continue
        for k in range(m):
            ti = &info[k]
            src = dyf + ti.yoff
            e = E + rr * k
            if ti.nr == r and ti.nc == r:
                _copy_rows(e, r, src, Wo, r, r)
            else:
                for i in range(rr):
                    e[i] = 0
                for i in range(ti.nr):
                    for s in range(ti.nc):
                        e[r * i + s] = src[i * Wo + s]
            if db != NULL:
                tile_sum = 0
                for i in range(rr):
                    tile_sum = tile_sum + e[i]
                acc[k & 1] += tile_sum
        if db != NULL:
            db[f] += acc[0] + acc[1]
        _output_adjoint(p, E, 0, dM + <Py_ssize_t>f * p.tb, m)


# ---------------------------------------------------------------------------- forward

# The forward can keep its V for the weight gradient (which would transform x again):
# V[ξ, c, t] for every tile t, (a2, C, row) with ξ stride C*row + XI_PAD.
cdef inline Py_ssize_t _kept_row(const Plan* p) noexcept nogil:
    """Row stride of a kept V: every tile, rounded up to 16 (and 16 more where rows
    would be a multiple of 512 apart, which map to few L1 sets)."""
    cdef Py_ssize_t row = (p.T + 15) // 16 * 16
    if row % 512 == 0:
        row += 16
    return row


cdef inline Py_ssize_t _kept_xi(const Plan* p) noexcept nogil:
    return <Py_ssize_t>p.C * _kept_row(p) + XI_PAD


cdef struct PoolOut:
    # the channel-major forward pooled 2x2 (wg_cm_output_pool_f): y is (N, F, 2, 2)
    unsigned char* codes    # window codes, (N, F, 2, 2), or NULL
    int relu
    unsigned char* nan      # per block: 1 if a NaN reached the pool


cdef void _forward_block(const Plan* p, const floating* x, const floating* U,
                         const floating* bias, floating* y, Py_ssize_t blk,
                         floating* buf, TileInfo* info, floating* kept,
                         PoolOut* pool, const unsigned char* in_codes) noexcept nogil:
    """Tiles blk*tb.. of the forward; V in buf, or in ``kept`` (see _kept_row) if not
    NULL; pooled if ``pool`` is not NULL; with ``in_codes``, x is a 2x2 max pool's
    gradient (N, C, 2, 2) and its window codes, spread into 4x4 planes as they are read
    (both channel-major only)."""
    cdef Py_ssize_t t0 = blk * p.tb
    cdef Py_ssize_t m = p.tb if t0 + p.tb <= p.T else p.T - t0
    cdef floating* V = buf
    cdef Py_ssize_t vxi = p.vs, vrow = p.tb, vt
    cdef floating* M = buf + p.a2 * p.vs
    cdef Py_ssize_t FC = _u_stride(p.F, p.C)
    cdef int xi
    cdef floating* scratch = buf + p.a2 * (p.vs + p.ms)
    if kept != NULL:
        V = kept + (t0 * p.C if p.cm else t0)
        vxi = _kept_xi(p)
        vrow = _kept_row(p)
    if floating is float and p.cm:
        # V (unless kept, which is ξ-major for the weight gradient) and M tile-major
        # (wg_cm_input_f): the GEMMs read and write rows a tile apart
        vt = p.C if kept != NULL else p.a2 * p.C
        if kept == NULL:
            vxi = p.C
        if in_codes != NULL:
            wg_cm_input_f(x + t0 * p.C * 4, in_codes + t0 * p.C * 4, p.C, m, V, vxi, vt)
        else:
            wg_cm_input_f(x + t0 * p.C * 16, NULL, p.C, m, V, vxi, vt)
        for xi in range(p.a2):   # M[ξ] (m, F) = V[ξ] (m, C) @ U[ξ] (C, F)
            wg_cm_gemm(False, <int>m, p.F, p.C, V + xi * vxi, vt, U + xi * FC, p.F,
                       M + xi * p.F, p.a2 * p.F, 0)
        if pool == NULL:
            wg_cm_output_f(M, p.F, p.a2 * p.F, bias, y + t0 * p.F * 16, p.F, m)
        elif wg_cm_output_pool_f(M, p.F, p.a2 * p.F, bias, y + t0 * p.F * 4,
                                 pool.codes + t0 * p.F * 4 if pool.codes != NULL else NULL,
                                 p.F, m, pool.relu):
            pool.nan[blk] = 1
        return
    _input_transform(p, x, t0, m, V, vxi, vrow, scratch, info)
    for xi in range(p.a2):   # M[ξ] (F, m) = U[ξ] (F, C) @ V[ξ] (C, m)
        gemm(c'N', c'N', p.F, <int>m, p.C, <floating>1, U + xi * FC, p.C,
             V + xi * vxi, <int>vrow, <floating>0, M + xi * p.ms, <int>p.tb)
    _output_transform(p, M, bias, y, m, scratch, info)


cdef struct WeightView:
    # U[ξ] row r, column s is the transform of the kernel at w[base + r*wr + s*ws], its
    # entry (i, j) at + i*wi + j*wj (wg_weight_gather_f); wr == 0: w is (R, S, k, k)
    Py_ssize_t base, wr, ws, wi, wj


cdef WeightView _weight_view(weight, const Plan* p, bint swapped) except *:
    """How U[ξ] ((F, C), or (C, F) where p.cm) reads the layer's weight (F_w, C_w, k, k):
    the forward's own (swapped False), or for the input gradient its transpose rotated by
    180 degrees; gathered in place on float32 AVX-512, else (wr 0) from a copy in that
    layout (_weight_copy)."""
    cdef WeightView v
    cdef Py_ssize_t k = p.k, k2 = p.k * p.k, cw = weight.shape[1]
    v.wr = 0
    if not p.loads or weight.dtype != np.float32 or 15 * cw * k2 >= 2**31:
        return v
    # rows walk the weight's input channels where the input gradient's or cm's transpose
    if swapped != p.cm:
        v.wr, v.ws = k2, cw * k2
    else:
        v.wr, v.ws = cw * k2, k2
    if swapped:
        v.wi, v.wj, v.base = -k, -1, k2 - 1
    else:
        v.wi, v.wj, v.base = k, 1, 0
    return v


cdef _weight_copy(weight, const Plan* p, bint swapped):
    """The weight as the (R, S, k, k) array U[ξ]'s rows and columns read (_weight_view)."""
    w = weight.transpose(1, 0, 2, 3) if swapped != p.cm else weight
    return np.ascontiguousarray(w[:, :, ::-1, ::-1] if swapped else w)


cdef _forward(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
              const floating[::1] bias, floating[:, :, :, ::1] y, Plan p, int num_threads,
              floating* kept, WeightView view, PoolOut* pool,
              const unsigned char* in_codes):
    """w: the layer's weight if view.wr, else _weight_copy's (R, S, k, k) array, R x S =
    F x C (or C x F where p.cm: U[ξ] is then (C, F))."""
    cdef const floating* bp = NULL
    cdef Py_ssize_t blk
    cdef int nt = choose_threads(num_threads, _cost(&p), min(p.nblocks, split_units(_cost(&p))))
    cdef floating* U = NULL
    cdef floating* buffers = NULL
    cdef TileInfo* infos = NULL
    cdef floating* buf
    if bias is not None:
        bp = &bias[0]
    try:
        U = <floating*>scratch_alloc(<size_t>p.a2 * _u_stride(p.F, p.C), sizeof(floating))
        buffers = <floating*>scratch_alloc(<size_t>nt * p.buf_len, sizeof(floating))
        infos = <TileInfo*>scratch_alloc(<size_t>nt * p.tb, sizeof(TileInfo))
        with nogil:
            if floating is float and view.wr != 0:
                wg_weight_gather_f(&w[0, 0, 0, 0] + view.base, view.wr, view.ws, view.wi,
                                   view.wj, p.C if p.cm else p.F, p.F if p.cm else p.C,
                                   &G_F[_tiling(p.a)][0], p.a, U, _u_stride(p.F, p.C))
            else:
                _weight_transform(&w[0, 0, 0, 0], U, w.shape[0], w.shape[1], p.a, p.k)
            for blk in prange(p.nblocks, num_threads=nt, schedule='static'):
                buf = buffers + threadid() * p.buf_len
                _forward_block(&p, &x[0, 0, 0, 0], U, bp, &y[0, 0, 0, 0], blk, buf,
                               infos + threadid() * p.tb, kept, pool, in_codes)
    finally:
        free(U)
        free(buffers)
        free(infos)


cdef _run_forward(x, weight, bias, y, Plan p, int num_threads, kept=None,
                  bint swapped=False, PoolOut* pool=NULL,
                  const unsigned char* in_codes=NULL):
    """The forward of x with the layer's ``weight`` (swapped: the input gradient's),
    pooled into y (N, F, 2, 2) with ``pool``; x pooled with ``in_codes``
    (_forward_block)."""
    cdef void* kp = NULL if kept is None else cnp.PyArray_DATA(kept)
    cdef WeightView view = _weight_view(weight, &p, swapped)
    w = weight if view.wr != 0 else _weight_copy(weight, &p, swapped)
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT:
        _forward[float](x, w, bias, y, p, num_threads, <float*>kp, view, pool, in_codes)
    else:
        _forward[double](x, w, bias, y, p, num_threads, <double*>kp, view, pool, in_codes)


cdef int _kernel_side(weight_shape) except -1:
    cdef int k = weight_shape[2]
    if k not in (3, 5) or weight_shape[3] != k:
        raise ValueError(f"winograd conv: the kernel must be 3x3 or 5x5, got "
                         f"{weight_shape[2]}x{weight_shape[3]}")
    return k


cdef int _tile(int tile, int k) except -1:
    """``tile`` checked: the output tile side r of F(r x r, k x k), 2 or 4 for 3x3
    (F(2x2, 3x3), F(4x4, 3x3)), 4 for 5x5 (F(4x4, 5x5))."""
    if k == 5 and tile != 4:
        raise ValueError(f"winograd tile for a 5x5 kernel must be 4, got {tile}")
    if tile != 2 and tile != 4:
        raise ValueError(f"winograd tile for a 3x3 kernel must be 2 or 4, got {tile}")
    return tile


cdef int _float_level(bint float32) noexcept:
    """What data may use on this CPU: FLOAT_LOADS (float32 where wg_loads_patches:
    position-major loads, the gathered weight transform and the channel-major
    transforms), FLOAT_CM (float32 where only wg_channel_major), else 0."""
    if not float32:
        return 0
    return FLOAT_LOADS if wg_loads_patches() else (FLOAT_CM if wg_channel_major() else 0)


cdef Plan _forward_plan(input_shape, weight_shape, padding, int tile,
                        int float_level=0, bint channel_major=False) except *:
    """The forward's plan for input (N, C, H, W), weight (F, C, k, k) and padding."""
    cdef int k = _kernel_side(weight_shape)
    cdef int H = input_shape[2], W = input_shape[3], ph = padding[0], pw = padding[1]
    cdef int Ho = H + 2 * ph - k + 1, Wo = W + 2 * pw - k + 1
    return _plan(input_shape[0], input_shape[1], H, W, weight_shape[0], Ho, Wo, ph, pw, k,
                 _tile(tile, k), BLOCK_BUDGET, MAX_BLOCK_TILES, float_level, channel_major)


cdef _check_channel_major(const Plan* p, bint channel_major, str what):
    """A ValueError where the channel-major plan was asked for and does not fit."""
    if channel_major and not p.cm:
        raise ValueError(f"{what}: the channel-major plan needs float32 on AVX2 + FMA or "
                         "AVX-512 and F(4x4, 3x3) on 4x4 planes with padding 1 (see "
                         "winograd_channel_major_fits)")


def winograd_channel_major_fits(input_shape, weight_shape, *, padding, int tile, dtype):
    """Whether the channel-major plan (``channel_major=True``) can run input (N, C, H, W)
    of ``dtype``, weight (F, C, k, k) and padding with ``tile``: float32 on a CPU with
    AVX2 + FMA or AVX-512, F(4x4, 3x3) on 4x4 planes with padding 1.  The input
    gradient's plan fits where the forward's does (its planes and padding are the same)."""
    cdef Plan p = _forward_plan(input_shape, weight_shape, padding, tile,
                                _float_level(np.dtype(dtype) == np.float32), True)
    return bool(p.cm)


def winograd_channel_major_lanes():
    """Channels a vector of the channel-major transforms and GEMMs on this CPU: 16 on
    AVX-512, 8 on AVX2 + FMA, 0 where there are none."""
    cdef int level = _float_level(True)
    return 16 if level >= FLOAT_LOADS else (8 if level >= FLOAT_CM else 0)


def winograd_forward(x, weight, bias, *, padding, int tile, bint keep_input=False,
                     int num_threads, bint channel_major=False):
    """y (N, F, Ho, Wo) = weight (F, C, k, k) ⋆ x (N, C, H, W) + bias (F,) or None, k 3
    or 5, stride 1, padding (ph, pw) (each <= k - 1), Ho = H + 2*ph - k + 1, Wo likewise;
    ``tile``: the output tile side, 2 or 4 for 3x3, 4 for 5x5.  keep_input: return
    (y, V), V the transformed x for winograd_backward_weight's ``kept_input`` (None where
    nothing was transformed; its layout is the plan's: pass the same channel_major).
    channel_major: the channel-major plan (winograd_channel_major_fits)."""
    cdef Plan p = _forward_plan(x.shape, weight.shape, padding, tile,
                                _float_level(x.dtype == np.float32), channel_major)
    _check_channel_major(&p, channel_major, "winograd_forward")
    y = np.empty((p.N, p.F, p.Ho, p.Wo), dtype=x.dtype)
    if y.size == 0 or p.C == 0:
        if p.C == 0:
            y[...] = 0 if bias is None else bias.reshape(-1, 1, 1)
        return (y, None) if keep_input else y
    kept = np.empty((p.a2, _kept_xi(&p)), dtype=x.dtype) if keep_input else None
    _run_forward(x, weight, bias, y, p, num_threads, kept)
    return (y, kept) if keep_input else y


def winograd_pool_forward(x, weight, bias, *, padding, int tile, bint relu, bint need_codes,
                          bint keep_input, int num_threads):
    """max_pool2d(winograd_forward(..., channel_major=True), 2), relu'd with ``relu``
    (float32, where winograd_channel_major_fits): each 4x4 output plane pooled in
    registers as it is made, so it is never written out.
    (y (N, F, 2, 2), codes as max_pool2d_2x2_forward's (and max_pool2d_relu_2x2_forward's
    with ``relu``) or None without ``need_codes``, V as keep_input's or None); or None if a
    NaN reached the pool (the caller then runs the ops one by one)."""
    cdef Plan p = _forward_plan(x.shape, weight.shape, padding, tile,
                                _float_level(x.dtype == np.float32), True)
    _check_channel_major(&p, True, "winograd_pool_forward")
    y = np.empty((p.N, p.F, 2, 2), dtype=np.float32)
    codes = np.empty((p.N, p.F, 2, 2), dtype=np.uint8) if need_codes else None
    kept = np.empty((p.a2, _kept_xi(&p)), dtype=np.float32) if keep_input else None
    if y.size == 0:
        return y, codes, kept
    nan = np.zeros(p.nblocks, dtype=np.uint8)
    cdef unsigned char[::1] nv = nan
    cdef unsigned char[:, :, :, ::1] cv
    cdef PoolOut pool
    pool.codes = NULL
    if need_codes:
        cv = codes
        pool.codes = &cv[0, 0, 0, 0]
    pool.relu = relu
    pool.nan = &nv[0]
    _run_forward(x, weight, bias, y, p, num_threads, kept, False, &pool)
    if nan.any():
        return None
    return y, codes, kept


def winograd_kept_input_elements(input_shape, weight_shape, *, padding, int tile):
    """Elements of the V that winograd_forward(..., keep_input=True) keeps for input
    (N, C, H, W), weight (F, C, k, k), padding and tile."""
    cdef Plan p = _forward_plan(input_shape, weight_shape, padding, tile)
    return p.a2 * _kept_xi(&p)


def winograd_backward_input(grad_out, weight, input_shape, *, padding, int tile,
                            int num_threads, pool_codes=None, bint channel_major=False):
    """grad_input (N, C, H, W) from grad_out (N, F, Ho, Wo) and weight (F, C, k, k):
    the forward on grad_out with the weight transposed to (C, F, k, k) and rotated by
    180 degrees, padding (k - 1 - ph, k - 1 - pw); ``tile`` as the forward's, for the
    plane (H, W).  pool_codes, channel_major: as winograd_backward_weight's."""
    cdef int k = _kernel_side(weight.shape)
    cdef int N = input_shape[0], C = input_shape[1], H = input_shape[2], W = input_shape[3]
    cdef int F = weight.shape[0], ph = k - 1 - padding[0], pw = k - 1 - padding[1]
    cdef int pooled = 1 if pool_codes is None else 2
    cdef int Ho = grad_out.shape[2] * pooled, Wo = grad_out.shape[3] * pooled
    cdef Plan p = _plan(N, F, Ho, Wo, C, H, W, ph, pw, k, _tile(tile, k), BLOCK_BUDGET,
                        MAX_BLOCK_TILES, _float_level(grad_out.dtype == np.float32),
                        channel_major)
    _check_channel_major(&p, channel_major, "winograd_backward_input")
    cdef const unsigned char* in_codes = _pooled(grad_out, pool_codes, &p,
                                                 "winograd_backward_input")
    dx = np.empty((N, C, H, W), dtype=grad_out.dtype)
    if dx.size == 0:
        return dx
    if F == 0:
        dx.fill(0)
        return dx
    _run_forward(grad_out, weight, None, dx, p, num_threads, None, True, NULL, in_codes)
    return dx


# -------------------------------------------------------------------- backward: dW, db

cdef void _weight_grad_chunk(const Plan* p, const floating* x, const floating* dy,
                             Py_ssize_t b0, Py_ssize_t b1, floating* dU, double* db,
                             floating* buf, TileInfo* info, const floating* kept,
                             const unsigned char* dy_codes) noexcept nogil:
    """dU (a2, F, C) = Σ over blocks b0..b1-1 of dM[ξ] @ V[ξ]ᵀ (overwritten);
    db (if not NULL) += Σ dY over those blocks.  V: the forward's (``kept``, see
    _kept_row) if not NULL, else x transformed here.  With ``dy_codes``, dy is a 2x2 max
    pool's gradient (N, F, 2, 2), spread as it is read (channel-major only)."""
    cdef const floating* V
    cdef Py_ssize_t vxi = p.vs, vrow = p.tb
    cdef floating* dM = buf + p.a2 * p.vs
    cdef floating* scratch = buf + p.a2 * (p.vs + p.ms)
    cdef Py_ssize_t FC = _u_stride(p.F, p.C), blk, t0, m
    cdef floating beta
    cdef int xi
    if kept != NULL:
        vxi = _kept_xi(p)
        vrow = _kept_row(p)
    for xi in range(p.a2):   # the padding between ξ rows, which the GEMMs never write
        memset(dU + xi * FC + <Py_ssize_t>p.F * p.C, 0, XI_PAD * sizeof(floating))
    for blk in range(b0, b1):
        t0 = blk * p.tb
        m = p.tb if t0 + p.tb <= p.T else p.T - t0
        beta = 0 if blk == b0 else 1
        if floating is float and p.cm:
            if kept != NULL:
                V = kept + t0 * p.C
            else:   # ξ-major: these GEMMs sum over the tiles, one row after the other
                V = buf
                wg_cm_input_f(x + t0 * p.C * 16, NULL, p.C, m, buf, vxi, p.C)
            if dy_codes != NULL:
                wg_cm_adjoint_f(dy + t0 * p.F * 4, dy_codes + t0 * p.F * 4, p.F, m, dM, p.ms,
                                db)
            else:
                wg_cm_adjoint_f(dy + t0 * p.F * 16, NULL, p.F, m, dM, p.ms, db)
            for xi in range(p.a2):   # dU[ξ] (F, C) += dM[ξ]ᵀ (F, m) @ V[ξ] (m, C)
                wg_cm_gemm(True, p.F, p.C, <int>m, dM + xi * p.ms, p.F, V + xi * vxi, p.C,
                           dU + xi * FC, p.C, blk != b0)
            continue
        if kept != NULL:
            V = kept + t0
            _tile_table(p, t0, m, info)
        else:
            V = buf
            _input_transform(p, x, t0, m, buf, vxi, vrow, scratch, info)
        _output_untransform(p, dy, dM, db, m, scratch, info)
        for xi in range(p.a2):   # dU[ξ] (F, C) += dM[ξ] (F, m) @ V[ξ]ᵀ (m, C)
            gemm(c'N', c'T', p.F, p.C, <int>m, <floating>1, dM + xi * p.ms, <int>p.tb,
                 V + xi * vxi, <int>vrow, beta, dU + xi * FC, p.C)


cdef _backward_weight(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] dy,
                      floating[:, :, :, ::1] dw, floating[::1] db, Plan p, int num_threads,
                      const floating* kept, const unsigned char* dy_codes):
    cdef Py_ssize_t usize = p.a2 * _u_stride(p.F, p.C)
    # Number of chunks (partials): a function of the problem only, never of the threads.
    cdef Py_ssize_t nchunks = partial_chunks(_cost(&p), usize, p.nblocks)
    cdef int nt = choose_threads(num_threads, _cost(&p), nchunks)
    cdef floating* buffers = NULL
    cdef floating* partials = NULL
    cdef TileInfo* infos = NULL
    cdef double* dbp = NULL
    cdef double* dbc
    cdef floating* buf
    cdef Py_ssize_t ch
    try:
        buffers = <floating*>scratch_alloc(<size_t>nt * p.buf_len, sizeof(floating))
        partials = <floating*>scratch_alloc(<size_t>nchunks * usize, sizeof(floating))
        infos = <TileInfo*>scratch_alloc(<size_t>nt * p.tb, sizeof(TileInfo))
        if db is not None:
            dbp = <double*>scratch_alloc(nchunks * p.F, sizeof(double), True)
        with nogil:
            for ch in prange(nchunks, num_threads=nt, schedule='static'):
                buf = buffers + threadid() * p.buf_len
                dbc = dbp + ch * p.F if dbp != NULL else NULL
                _weight_grad_chunk(&p, &x[0, 0, 0, 0], &dy[0, 0, 0, 0],
                                   ch * p.nblocks // nchunks, (ch + 1) * p.nblocks // nchunks,
                                   partials + ch * usize, dbc, buf, infos + threadid() * p.tb,
                                   kept, dy_codes)
            add_partials(partials, partials + usize, nchunks - 1, usize, nt)
            _weight_untransform(partials, &dw[0, 0, 0, 0], p.F, p.C, p.a, p.k)
            if dbp != NULL:
                sum_bias_partials(dbp, nchunks, p.F, &db[0])
    finally:
        free(buffers)
        free(partials)
        free(dbp)
        free(infos)


cdef const unsigned char* _pooled(grad_out, pool_codes, const Plan* p, str what) except? NULL:
    """The codes of a pooled gradient (pool_codes not None): checked against grad_out and
    the channel-major plan, which alone spreads them."""
    if pool_codes is None:
        return NULL
    if not p.cm:
        raise ValueError(f"{what}: a pooled gradient needs the channel-major plan "
                         "(channel_major=True)")
    want = (p.N, p.F if what == "winograd_backward_weight" else p.C, 2, 2)
    if (tuple(grad_out.shape) != want or type(pool_codes) is not np.ndarray
            or pool_codes.dtype != np.uint8 or pool_codes.shape != want
            or not pool_codes.flags.c_contiguous):
        raise ValueError(f"{what}: a pooled gradient and C-contiguous uint8 codes of shape "
                         f"{want} needed, got {grad_out.shape} and "
                         f"{getattr(pool_codes, 'shape', pool_codes)}")
    return <const unsigned char*>cnp.PyArray_DATA(pool_codes)


def winograd_backward_weight(x, grad_out, weight_shape, *, padding, int tile,
                             bint need_bias, kept_input=None, int num_threads,
                             pool_codes=None, bint channel_major=False):
    """(grad_weight (F, C, k, k), grad_bias (F,) or None) from x (N, C, H, W) and
    grad_out (N, F, Ho, Wo) of the stride-1 convolution with weight_shape (F, C, k, k),
    k 3 or 5, and padding (ph, pw); ``tile`` as the forward's, for the plane (Ho, Wo).
    kept_input: the V that winograd_forward(x, ..., keep_input=True) returned for this x
    and tile, instead of transforming x again.  pool_codes: grad_out is the gradient of
    a 2x2 max pool of the conv output, (N, F, 2, 2), with that pool's window codes,
    spread into dY as it is read (the channel-major plan only).  channel_major: the
    channel-major plan (winograd_channel_major_fits), as the forward's for kept_input."""
    cdef int k = _kernel_side(weight_shape)
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef int F = grad_out.shape[1], ph = padding[0], pw = padding[1]
    cdef int pooled = 1 if pool_codes is None else 2
    cdef int Ho = grad_out.shape[2] * pooled, Wo = grad_out.shape[3] * pooled
    cdef Plan p = _plan(N, C, H, W, F, Ho, Wo, ph, pw, k, _tile(tile, k),
                        WEIGHT_BLOCK_BUDGET, WEIGHT_MAX_BLOCK_TILES,
                        _float_level(x.dtype == np.float32), channel_major)
    _check_channel_major(&p, channel_major, "winograd_backward_weight")
    cdef const unsigned char* dy_codes = _pooled(grad_out, pool_codes, &p,
                                                 "winograd_backward_weight")
    dw = np.empty((F, C, k, k), dtype=x.dtype)
    db = np.empty(F, dtype=x.dtype) if need_bias else None
    if p.T == 0 or dw.size == 0:
        dw.fill(0)
        if db is not None:
            db[...] = grad_out.sum(axis=(0, 2, 3))
        return dw, db
    cdef void* kp = NULL
    if kept_input is not None:
        want = (p.a2, _kept_xi(&p))
        if (type(kept_input) is not np.ndarray or kept_input.dtype != x.dtype
                or kept_input.shape != want
                or not kept_input.flags.c_contiguous):
            got = (f"{type(kept_input).__name__} "
                   f"{getattr(kept_input, 'shape', '')} "
                   f"{getattr(kept_input, 'dtype', '')}")
            raise ValueError(f"winograd_backward_weight: kept_input must be the "
                             f"C-contiguous {want} {x.dtype} array that winograd_forward"
                             f"(keep_input=True) returned for this input, got {got}")
        kp = cnp.PyArray_DATA(kept_input)
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT:
        _backward_weight[float](x, grad_out, dw, db, p, num_threads, <const float*>kp,
                                dy_codes)
    else:
        _backward_weight[double](x, grad_out, dw, db, p, num_threads, <const double*>kp,
                                 dy_codes)
    return dw, db


cdef extern from *:
    """
    #include <stdint.h>
    #include "cpu_level.h"
    /* 1 when every one of the n float32 (wide = 0) or float64 (wide = 1) values at p is
       finite and below 2^64 (float32) or 2^512 (float64) in magnitude, read off the
       exponent bits: integer tests, so the loop vectorises. */
    /* built for AVX-512, AVX2 and the baseline (the scan ran at 4 lanes a step on the
       baseline build) */
    MINIDL_CLONES("avx512f", "avx2", "default")
    static int minidl_fits_winograd(const void* p, Py_ssize_t n, int wide) {
        Py_ssize_t i;
        if (wide) {
            const uint64_t* u = (const uint64_t*)p;
            const uint64_t e = 0x7ff0000000000000ULL, limit = (uint64_t)(1023 + 512) << 52;
            uint64_t bad = 0;
            for (i = 0; i < n; i++) bad |= (uint64_t)((u[i] & e) >= limit);
            return bad == 0;
        } else {
            const uint32_t* u = (const uint32_t*)p;
            const uint32_t e = 0x7f800000U, limit = (uint32_t)(127 + 64) << 23;
            uint32_t bad = 0;
            for (i = 0; i < n; i++) bad |= (uint32_t)((u[i] & e) >= limit);
            return bad == 0;
        }
    }
    """
    int minidl_fits_winograd(const void* p, Py_ssize_t n, int wide) noexcept nogil


def fits_winograd(cnp.ndarray a, int num_threads=1):
    """Whether Winograd may transform the C-contiguous float32 or float64 array ``a``: no
    inf or NaN (the transforms mix a whole tile, so one inf would make the tile NaN where
    PyTorch's output stays finite) and nothing so large (2^64 in float32, 2^512 in
    float64) that the transforms' sums could overflow where a direct product would not.
    Big arrays are scanned in chunks on up to ``num_threads`` threads."""
    cdef const char* p = <const char*>cnp.PyArray_DATA(a)
    cdef Py_ssize_t n = a.size, chunk = FITS_CHUNK, c, lo
    cdef Py_ssize_t chunks = (n + chunk - 1) // chunk
    cdef int wide = cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT64
    cdef size_t item = 8 if wide else 4
    cdef int ok = 1
    cdef int nt = choose_threads(num_threads, <double>n, chunks)
    with nogil:
        if nt <= 1:
            ok = minidl_fits_winograd(p, n, wide)
        else:
            for c in prange(chunks, num_threads=nt, schedule='static'):
                lo = c * chunk
                ok &= minidl_fits_winograd(p + lo * item, min(chunk, n - lo), wide)
    return bool(ok)


def planned_threads():
    """Threads the last call of this module's kernels planned to use (for tests)."""
    return minidl_planned_threads
