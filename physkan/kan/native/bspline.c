/* Local-support B-spline contraction on a uniform grid: the compiled kernels behind the
 * fused route of physkan.kan.local_fused (loaded with ctypes by physkan.kan.native, which
 * compiles this file on first use; C99 + OpenMP, no Python or torch headers).
 *
 * Layer spline branch, x (n, in), coefficients C (in*nb, out), uniform grid t0 + h*j:
 *
 *     y[b, :] = sum_i sum_{r=0..k} value_r(f[b,i]) * C[i*nb + s[b,i] - k + r, :]
 *
 * with u = (x - t0) / h, s = floor(u), f = u - s, value_r(f) = sum_p m[r*(k+1)+p] f^p, and
 * only the functions 0 <= j < nb of each input (the k+1 non-zero ones). Three kernels:
 *
 *   forward     y  (n, out)     = the sum above               (n*in*(k+1)*out multiply-adds)
 *   coef_grad   gC (in*nb, out) = basis^T g, g = dL/dy          (the same count)
 *   input_grad  gx (n, in)      = sum_r value_r'(f) / h * full[b, row_r], full = g C^T
 *                                 (that GEMM is the caller's: MKL does it best)
 *
 * against (G+k) / (k+1) times as many multiply-adds for the dense basis matmul, and no
 * (n, in*nb) basis tensor written or read. A non-finite u gives NaN where a dense basis row
 * holding NaN would; points outside the knots have no active function (zero basis row).
 *
 * Two more kernels serve the dense path of small layers on any non-decreasing knots (the
 * grids update_grid makes with grid_eps < 1 are not uniform): basis writes the dense basis
 * (n, in, nb) in one pass, basis_grad its first-order input gradient (see DEFINE_BASIS).
 *
 * Determinism: every output element is one thread's sum in a fixed order (forward and
 * input_grad split points, coef_grad splits inputs, whose coefficient rows are disjoint),
 * and the file is built with -std=c99 (no floating-point contraction), so results are the
 * same bits for any thread count and any instruction set the clones below dispatch to.
 */
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ORDER 15 /* k <= MAX_ORDER (the loader checks) */
#define MAX_THREADS 64

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__) && defined(__linux__)
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CLONES
#endif

typedef struct {
    const void *x, *t0, *h, *m, *d, *coef, *g;
    void *out;
    int64_t n, in, nb, k, out_dim;
} Args;

/* Work is tiled in blocks of up to PB points x CHUNK inputs. A branch-free pass (it
 * vectorizes) gets, for every (point, input) of the tile, the window of k+1 adjacent
 * coefficient rows it reads and the k+1 weights of those rows; then, input by input, the
 * tile's points use that input's rows while they are in L1. Each output element is summed
 * in the same order as without tiling.
 *
 * Windows. Function j = floor(u) - k + r (r = 0..k) of an input exists for 0 <= j < nb. The
 * window starts at `lead = floor(u) - k` clamped into [0, nb-1-k] (so it always lies in the
 * input's block) and weight q is value_{q - shift}(f), shift = lead - start, zero where
 * q - shift is not in 0..k: functions that do not exist get weight 0, points outside the
 * knots all-zero weights. A non-finite u gives NaN weights (0 * u), as a dense basis row
 * of NaN would. */
#define CHUNK 64
#define PB 32

#define DEFINE_HELPERS(S, T, FLOOR)                                                           \
    /* Weights of inputs [0, cnt) of one point: start[c] and w[q*stride + c], q = 0..k, of  \
     * the polynomials mat (k+1 rows of deg+1 coefficients). */                              \
    static inline void plan_##S(const T *restrict xb, const T *restrict t0,                  \
                                const T *restrict h, int64_t cnt, int64_t nb, int64_t k,      \
                                const T *restrict mat, int64_t deg, int32_t *restrict start,  \
                                T *restrict w, int64_t stride) {                              \
        T f[CHUNK], shift[CHUNK], nan0[CHUNK], val[(MAX_ORDER + 1) * CHUNK];                  \
        const T top = (T)(nb + k), last = (T)(nb - 1 - k);                                    \
        for (int64_t c = 0; c < cnt; ++c) {                                                   \
            const T u = (xb[c] - t0[c]) / h[c];                                               \
            T uc = u > (T)-1 ? u : (T)-1; /* NaN -> -1 */                                     \
            uc = uc < top ? uc : top;                                                         \
            const T sp = FLOOR(uc);                                                           \
            const T lead = sp - (T)k;                                                         \
            T st = lead > (T)0 ? lead : (T)0;                                                 \
            st = st < last ? st : last;                                                       \
            f[c] = u - sp;                                                                    \
            shift[c] = lead - st;                                                             \
            start[c] = (int32_t)st;                                                           \
            nan0[c] = u * (T)0; /* 0, or NaN for a non-finite u */                            \
        }                                                                                     \
        for (int64_t r = 0; r <= k; ++r) {                                                    \
            const T *mr = mat + r * (deg + 1);                                                \
            T *restrict vr = val + r * CHUNK;                                                 \
            const T lead_coef = mr[deg];                                                      \
            for (int64_t c = 0; c < cnt; ++c) vr[c] = lead_coef;                              \
            for (int64_t p = deg - 1; p >= 0; --p) {                                          \
                const T mp = mr[p];                                                           \
                for (int64_t c = 0; c < cnt; ++c) vr[c] = vr[c] * f[c] + mp;                  \
            }                                                                                 \
        }                                                                                     \
        int edges = 0; /* any window moved (shift != 0)? interior points need no selects */  \
        for (int64_t c = 0; c < cnt; ++c) edges += shift[c] != (T)0;                          \
        if (edges == 0) {                                                                     \
            for (int64_t q = 0; q <= k; ++q) {                                                \
                T *restrict wq = w + q * stride;                                              \
                const T *restrict vq = val + q * CHUNK;                                       \
                for (int64_t c = 0; c < cnt; ++c) wq[c] = nan0[c] + vq[c];                    \
            }                                                                                 \
            return;                                                                           \
        }                                                                                     \
        for (int64_t q = 0; q <= k; ++q) {                                                    \
            T *restrict wq = w + q * stride;                                                  \
            for (int64_t c = 0; c < cnt; ++c) wq[c] = nan0[c];                                \
            for (int64_t r = 0; r <= k; ++r) {                                                \
                const T *restrict vr = val + r * CHUNK;                                       \
                const T want = (T)(q - r);                                                    \
                for (int64_t c = 0; c < cnt; ++c) wq[c] += shift[c] == want ? vr[c] : (T)0;   \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
    /* The tile's plan: (point q, input c) at q*CHUNK + c of start and of each weight row  \
     * w[r*PB*CHUNK + ...]. */                                                                \
    static inline void tile_##S(const Args *a, int64_t b0, int64_t pb, int64_t i0,           \
                                int64_t ci, const T *mat, int64_t deg, int32_t *start,        \
                                T *w) {                                                       \
        const T *x = a->x, *t0 = a->t0, *h = a->h;                                            \
        for (int64_t q = 0; q < pb; ++q)                                                      \
            plan_##S(x + (b0 + q) * a->in + i0, t0 + i0, h + i0, ci, a->nb, a->k, mat, deg,   \
                     start + q * CHUNK, w + q * CHUNK, PB * CHUNK);                           \
    }                                                                                         \
    /* y += sum_r w_r rows_r (rows k+1 apart by od), one output row. */                      \
    static inline void gather_##S(T *restrict y, const T *restrict rows, int64_t od,          \
                                  int64_t k, const T *restrict w, int64_t ws) {               \
        if (k == 3) {                                                                         \
            const T w0 = w[0], w1 = w[ws], w2 = w[2 * ws], w3 = w[3 * ws];                    \
            for (int64_t o = 0; o < od; ++o)                                                  \
                y[o] += (w0 * rows[o] + w1 * rows[od + o]) +                                  \
                        (w2 * rows[2 * od + o] + w3 * rows[3 * od + o]);                      \
            return;                                                                           \
        }                                                                                     \
        for (int64_t r = 0; r <= k; ++r) {                                                    \
            const T wr = w[r * ws];                                                           \
            for (int64_t o = 0; o < od; ++o) y[o] += wr * rows[r * od + o];                   \
        }                                                                                     \
    }                                                                                         \
    /* rows_r += w_r g, r = 0..k. */                                                          \
    static inline void scatter_##S(T *restrict rows, const T *restrict g, int64_t od,         \
                                   int64_t k, const T *restrict w, int64_t ws) {              \
        if (k == 3) {                                                                         \
            const T w0 = w[0], w1 = w[ws], w2 = w[2 * ws], w3 = w[3 * ws];                    \
            T *restrict r1 = rows + od, *restrict r2 = rows + 2 * od, *restrict r3 = rows + 3 * od; \
            for (int64_t o = 0; o < od; ++o) {                                                \
                const T go = g[o];                                                            \
                rows[o] += w0 * go;                                                           \
                r1[o] += w1 * go;                                                             \
                r2[o] += w2 * go;                                                             \
                r3[o] += w3 * go;                                                             \
            }                                                                                 \
            return;                                                                           \
        }                                                                                     \
        for (int64_t r = 0; r <= k; ++r) {                                                    \
            const T wr = w[r * ws];                                                           \
            T *restrict row = rows + r * od;                                                  \
            for (int64_t o = 0; o < od; ++o) row[o] += wr * g[o];                             \
        }                                                                                     \
    }

#define DEFINE_KERNELS(S, T)                                                                  \
    /* y[b0:b1] of the forward. */                                                            \
    CLONES static void forward_##S(const Args *a, int64_t b0, int64_t b1) {                   \
        const T *C = a->coef;                                                                 \
        T *y = a->out;                                                                        \
        const int64_t in = a->in, nb = a->nb, k = a->k, od = a->out_dim, ws = PB * CHUNK;     \
        int32_t start[PB * CHUNK];                                                            \
        T *w = malloc(sizeof(T) * PB * CHUNK * (size_t)(k + 1));                              \
        if (w == NULL) abort();                                                               \
        for (int64_t bt = b0; bt < b1; bt += PB) {                                            \
            const int64_t pb = b1 - bt < PB ? b1 - bt : PB;                                   \
            memset(y + bt * od, 0, sizeof(T) * (size_t)(pb * od));                            \
            for (int64_t i0 = 0; i0 < in; i0 += CHUNK) {                                      \
                const int64_t ci = in - i0 < CHUNK ? in - i0 : CHUNK;                         \
                tile_##S(a, bt, pb, i0, ci, a->m, k, start, w);                               \
                for (int64_t c = 0; c < ci; ++c) {                                            \
                    const T *cblk = C + (i0 + c) * nb * od;                                   \
                    for (int64_t q = 0; q < pb; ++q) {                                        \
                        const int64_t e = q * CHUNK + c;                                      \
                        gather_##S(y + (bt + q) * od, cblk + start[e] * od, od, k, w + e, ws); \
                    }                                                                         \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
        free(w);                                                                              \
    }                                                                                         \
    /* gC rows of inputs [i0, i1): sum over every point, in order. */                         \
    CLONES static void coef_grad_##S(const Args *a, int64_t i0, int64_t i1) {                 \
        const T *g = a->g;                                                                    \
        T *gc = a->out;                                                                       \
        const int64_t n = a->n, nb = a->nb, k = a->k, od = a->out_dim, ws = PB * CHUNK;       \
        int32_t start[PB * CHUNK];                                                            \
        T *w = malloc(sizeof(T) * PB * CHUNK * (size_t)(k + 1));                              \
        if (w == NULL) abort();                                                               \
        memset(gc + i0 * nb * od, 0, (size_t)((i1 - i0) * nb * od) * sizeof(T));              \
        for (int64_t bt = 0; bt < n; bt += PB) {                                              \
            const int64_t pb = n - bt < PB ? n - bt : PB;                                     \
            for (int64_t ic = i0; ic < i1; ic += CHUNK) {                                     \
                const int64_t ci = i1 - ic < CHUNK ? i1 - ic : CHUNK;                         \
                tile_##S(a, bt, pb, ic, ci, a->m, k, start, w);                               \
                for (int64_t c = 0; c < ci; ++c) {                                            \
                    T *gblk = gc + (ic + c) * nb * od;                                        \
                    for (int64_t q = 0; q < pb; ++q) {                                        \
                        const int64_t e = q * CHUNK + c;                                      \
                        scatter_##S(gblk + start[e] * od, g + (bt + q) * od, od, k, w + e, ws); \
                    }                                                                         \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
        free(w);                                                                              \
    }                                                                                         \
    /* gx[b0:b1] = sum_q w'_q full[b, i*nb + start + q] / h, w' the derivative polynomials' \
     * weights on the windows, full (n, width) = g C^T (a GEMM, done by the caller). */      \
    CLONES static void input_grad_##S(const Args *a, int64_t b0, int64_t b1) {                \
        const T *full = a->g, *h = a->h;                                                      \
        T *gx = a->out;                                                                       \
        const int64_t in = a->in, nb = a->nb, k = a->k, width = a->out_dim, ws = PB * CHUNK;  \
        int32_t start[PB * CHUNK];                                                            \
        T *w = malloc(sizeof(T) * PB * CHUNK * (size_t)(k + 1));                              \
        if (w == NULL) abort();                                                               \
        for (int64_t bt = b0; bt < b1; bt += PB) {                                            \
            const int64_t pb = b1 - bt < PB ? b1 - bt : PB;                                   \
            for (int64_t i0 = 0; i0 < in; i0 += CHUNK) {                                      \
                const int64_t ci = in - i0 < CHUNK ? in - i0 : CHUNK;                         \
                tile_##S(a, bt, pb, i0, ci, a->d, k - 1, start, w);                           \
                for (int64_t q = 0; q < pb; ++q) {                                            \
                    const T *row = full + (bt + q) * width + i0 * nb;                         \
                    T *out = gx + (bt + q) * in + i0;                                         \
                    for (int64_t c = 0; c < ci; ++c) {                                        \
                        const int64_t e = q * CHUNK + c;                                      \
                        const T *win = row + c * nb + start[e];                               \
                        T acc = (T)0;                                                         \
                        for (int64_t r = 0; r <= k; ++r) acc += w[r * ws + e] * win[r];       \
                        out[c] = acc / h[i0 + c];                                             \
                    }                                                                         \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
        free(w);                                                                              \
    }

/* The dense basis (n, in, nb) on any non-decreasing knots t (in, m), nb = m - 1 - k: the
 * de Boor triangle of the PyTorch route (physkan.kan.basis._local_general) in the same
 * operations and order, so the same bits. Span s: the last knot <= x (searchsorted, right);
 * rows with s outside [0, m - 2] (x outside [t_0, t_{m-1}), or NaN) stay zero. The knots
 * beyond the ends are t_0 - j h_lo and t_{m-1} + j h_hi (j = 1..k; the end spacings clamped
 * to >= 1e-12), as _pad_knots makes them. Args: x, coef = knots, out, out_dim = m. */
#define DEFINE_BASIS(S, T)                                                                    \
    static inline T knot_##S(const T *t, int64_t m, int64_t j, T h_lo, T h_hi) {              \
        if (j < 0) return t[0] - h_lo * (T)(-j);                                              \
        if (j > m - 1) return t[m - 1] + h_hi * (T)(j - (m - 1));                             \
        return t[j];                                                                          \
    }                                                                                         \
    /* Span of xv (the last knot <= xv) or -1 when it lies outside [t_0, t_{m-1}) or is     \
     * NaN; then vals[0..order] of the order-`order` functions non-zero there. */             \
    static inline int64_t triangle_##S(const T *t, int64_t m, T xv, int64_t order, T *vals) { \
        T left[MAX_ORDER + 1], right[MAX_ORDER + 1];                                          \
        int64_t lo = 0, hi = m; /* first knot > xv */                                         \
        while (lo < hi) {                                                                     \
            const int64_t mid = lo + (hi - lo) / 2;                                           \
            if (t[mid] <= xv) lo = mid + 1;                                                   \
            else hi = mid;                                                                    \
        }                                                                                     \
        const int64_t s = lo - 1;                                                             \
        if (s < 0 || s > m - 2) return -1;                                                    \
        const T d_lo = t[1] - t[0], d_hi = t[m - 1] - t[m - 2];                               \
        const T h_lo = d_lo > (T)1e-12 ? d_lo : (T)1e-12;                                     \
        const T h_hi = d_hi > (T)1e-12 ? d_hi : (T)1e-12;                                     \
        for (int64_t j = 1; j <= order; ++j) {                                                \
            left[j] = xv - knot_##S(t, m, s + 1 - j, h_lo, h_hi);                             \
            right[j] = knot_##S(t, m, s + j, h_lo, h_hi) - xv;                                \
        }                                                                                     \
        vals[0] = (T)1;                                                                       \
        for (int64_t j = 1; j <= order; ++j) {                                                \
            T saved = (T)0;                                                                   \
            for (int64_t r = 0; r < j; ++r) {                                                 \
                const T den = right[r + 1] + left[j - r];                                     \
                const T temp = vals[r] / (den == (T)0 ? (T)1 : den);                          \
                vals[r] = saved + right[r + 1] * temp;                                        \
                saved = left[j - r] * temp;                                                   \
            }                                                                                 \
            vals[j] = saved;                                                                  \
        }                                                                                     \
        return s;                                                                             \
    }                                                                                         \
    CLONES static void basis_##S(const Args *a, int64_t b0, int64_t b1) {                     \
        const T *x = a->x, *knots = a->coef;                                                  \
        T *out = a->out;                                                                      \
        const int64_t in = a->in, nb = a->nb, k = a->k, m = a->out_dim;                       \
        T vals[MAX_ORDER + 1];                                                                \
        memset(out + b0 * in * nb, 0, sizeof(T) * (size_t)((b1 - b0) * in * nb));             \
        for (int64_t b = b0; b < b1; ++b) {                                                   \
            for (int64_t i = 0; i < in; ++i) {                                                \
                const int64_t s = triangle_##S(knots + i * m, m, x[b * in + i], k, vals);     \
                if (s < 0) continue;                                                          \
                T *row = out + (b * in + i) * nb;                                             \
                for (int64_t r = 0; r <= k; ++r) {                                            \
                    const int64_t idx = s - k + r;                                            \
                    if (idx >= 0 && idx < nb) row[idx] = vals[r];                             \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
    /* gx[b, i] = sum_j g[b, i, j] dB_j/dx, with dB_j/dx = k (B_{j,k-1} / (t_{j+k} - t_j)   \
     * - B_{j+1,k-1} / (t_{j+k+1} - t_{j+1})) from the order k-1 triangle (a term with a    \
     * zero knot span is zero); zero where the basis row is. Args: g = dL/dbasis. */         \
    CLONES static void basis_grad_##S(const Args *a, int64_t b0, int64_t b1) {                \
        const T *x = a->x, *knots = a->coef, *g = a->g;                                       \
        T *gx = a->out;                                                                       \
        const int64_t in = a->in, nb = a->nb, k = a->k, m = a->out_dim;                       \
        T vals[MAX_ORDER + 1];                                                                \
        for (int64_t b = b0; b < b1; ++b) {                                                   \
            for (int64_t i = 0; i < in; ++i) {                                                \
                const T *t = knots + i * m;                                                   \
                const int64_t s = triangle_##S(t, m, x[b * in + i], k - 1, vals);             \
                T acc = (T)0;                                                                 \
                if (s >= 0) {                                                                 \
                    const T *gr = g + (b * in + i) * nb;                                      \
                    for (int64_t r = 0; r <= k; ++r) {                                        \
                        const int64_t j = s - k + r;                                          \
                        if (j < 0 || j >= nb) continue;                                       \
                        T d = (T)0;                                                           \
                        if (r >= 1) {                                                         \
                            const T den = t[j + k] - t[j];                                    \
                            if (den != (T)0) d += vals[r - 1] / den;                          \
                        }                                                                     \
                        if (r <= k - 1) {                                                     \
                            const T den = t[j + k + 1] - t[j + 1];                            \
                            if (den != (T)0) d -= vals[r] / den;                              \
                        }                                                                     \
                        acc += gr[j] * ((T)k * d);                                            \
                    }                                                                         \
                }                                                                             \
                gx[b * in + i] = acc;                                                         \
            }                                                                                 \
        }                                                                                     \
    }

DEFINE_HELPERS(f32, float, floorf)
DEFINE_HELPERS(f64, double, floor)
DEFINE_KERNELS(f32, float)
DEFINE_KERNELS(f64, double)
DEFINE_BASIS(f32, float)
DEFINE_BASIS(f64, double)

typedef void (*Kernel)(const Args *, int64_t, int64_t);

/* fn over [0, total) split into `threads` contiguous chunks, one per OpenMP thread. The
 * library links libgomp, which resolves to the one torch has loaded (same soname), so these
 * regions run on torch's own thread pool: no second pool competing for the cores. */
static void parallel(Kernel fn, const Args *a, int64_t total, int64_t threads) {
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > total) threads = total;
    if (threads <= 1) {
        fn(a, 0, total);
        return;
    }
#ifdef _OPENMP
#pragma omp parallel num_threads((int)threads)
    {
        const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
        fn(a, total * t / nt, total * (t + 1) / nt);
    }
#else
    fn(a, 0, total);
#endif
}

#define DEFINE_ENTRY(SUFFIX, T)                                                               \
    void physkan_spline_forward_##SUFFIX(const T *x, int64_t n, int64_t in, const T *t0,      \
                                         const T *h, int64_t nb, int64_t k, const T *m,       \
                                         const T *coef, int64_t out_dim, T *y,                \
                                         int64_t threads) {                                   \
        Args a = {x, t0, h, m, NULL, coef, NULL, y, n, in, nb, k, out_dim};                   \
        parallel(forward_##SUFFIX, &a, n, threads);                                           \
    }                                                                                         \
    void physkan_spline_coef_grad_##SUFFIX(const T *x, int64_t n, int64_t in, const T *t0,    \
                                           const T *h, int64_t nb, int64_t k, const T *m,     \
                                           const T *g, int64_t out_dim, T *gc,                \
                                           int64_t threads) {                                 \
        Args a = {x, t0, h, m, NULL, NULL, g, gc, n, in, nb, k, out_dim};                     \
        parallel(coef_grad_##SUFFIX, &a, in, threads);                                        \
    }                                                                                         \
    void physkan_spline_input_grad_##SUFFIX(const T *x, int64_t n, int64_t in, const T *t0,   \
                                            const T *h, int64_t nb, int64_t k, const T *d,    \
                                            const T *full, int64_t width, T *gx,              \
                                            int64_t threads) {                                \
        Args a = {x, t0, h, NULL, d, NULL, full, gx, n, in, nb, k, width};                    \
        parallel(input_grad_##SUFFIX, &a, n, threads);                                        \
    }                                                                                         \
    void physkan_spline_basis_##SUFFIX(const T *x, int64_t n, int64_t in, const T *knots,     \
                                       int64_t m, int64_t k, T *out, int64_t threads) {       \
        Args a = {x, NULL, NULL, NULL, NULL, knots, NULL, out, n, in, m - 1 - k, k, m};       \
        parallel(basis_##SUFFIX, &a, n, threads);                                             \
    }                                                                                         \
    void physkan_spline_basis_grad_##SUFFIX(const T *x, int64_t n, int64_t in, const T *knots, \
                                            int64_t m, int64_t k, const T *g, T *gx,          \
                                            int64_t threads) {                                \
        Args a = {x, NULL, NULL, NULL, NULL, knots, g, gx, n, in, m - 1 - k, k, m};           \
        parallel(basis_grad_##SUFFIX, &a, n, threads);                                        \
    }

DEFINE_ENTRY(f32, float)
DEFINE_ENTRY(f64, double)

/* ABI version the loader checks (bump when a signature changes); largest supported k. */
int64_t physkan_spline_abi(void) { return 2; }
int64_t physkan_spline_max_order(void) { return MAX_ORDER; }
