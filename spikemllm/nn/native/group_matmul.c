/* Grouped int8 products for SpikeLinear with one scale per (token, group) of input features.
 *
 *   out[n, o] = osum_g( (float(sum_{k in g} a[n, k] * w[o, k]) * s[n, g]) * wg[o, g] )
 *
 * a: int8 activation codes [N, K]; w: int8 weight codes [O, K] (the layer's own buffer, read as stored);
 * s: float32 [N, G] or NULL; wg: float32 [O, G] or NULL; out: float32 [N, O]. G = K / gs.
 *
 * Why a kernel of our own: the torch path must write every group's partial sum ([G, N, O] int32), convert,
 * scale and reduce it, four passes over G times the output; here each partial lives in a register.
 *
 * Exactness contract (tested bit for bit against the torch path, spikemllm/nn/group_sum.py):
 * - each group's dot product is an exact int32;
 * - float(acc) rounds to nearest even, then the multiplications by s and wg are separate IEEE float32 products
 *   (this file must be compiled with -ffp-contract=off: a fused multiply-add would round once instead of twice);
 * - osum is torch's CPU cascade order for a float32 sum over a leading dimension: running sums of `step`
 *   consecutive groups, folded into up to three higher levels (acc[j] += acc[j-1]) every step^j groups, the
 *   leftover groups summed last, then acc0 + acc1 + acc2 + acc3. step = 2^max(4, ceil_log2(G) / 4).
 *
 * The AVX512-VNNI path multiplies unsigned by signed bytes (vpdpbusd): a + 128 is unsigned, and each group's
 * accumulator starts at -128 * sum(w) so the result is the signed product exactly. Weights are repacked per block
 * of 16 outputs into a small per-thread buffer ([group][k/4][16 outputs][4 bytes]) that stays in L1 while every
 * token passes over it: no second copy of the weights is kept between calls.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#include <immintrin.h>
#define SPK_VNNI 1
#else
#define SPK_VNNI 0
#endif

#define SPK_LEVELS 4
#ifndef SPK_TILE
#define SPK_TILE 8 /* tokens per register tile: 8 independent dpbusd chains */
#endif

typedef struct {
    const int8_t *a;    /* [N, K] signed codes */
    const uint8_t *au;  /* [N, K] codes + 128 (VNNI path only) */
    const int8_t *w;    /* [O, K] */
    const float *s;     /* [N, G] or NULL */
    const float *wg;    /* [O, G] or NULL */
    float *out;         /* [N, O] */
    int64_t n, k, o, gs, g;
    int64_t step, power, full;
    int64_t b0, b1;     /* output blocks [b0, b1) of 16 */
    int status;
} spk_job;

static int64_t spk_ceil_log2(int64_t x) {
    if (x <= 2) return 1;
    int64_t v = x - 1, r = 0;
    while (v) { v >>= 1; ++r; }
    return r;
}

int spk_has_vnni(void) { return SPK_VNNI; }

/* The cascade fold after `i` groups (i a multiple of step): exactly torch's multi_row_sum. */
#define SPK_FOLD(ACC, I, POWER, MASK)                                          \
    for (int j = 1; j < SPK_LEVELS; ++j) {                                     \
        ACC[j] = ACC[j] + ACC[j - 1];                                          \
        ACC[j - 1] = 0.0f;                                                     \
        if (((I) & ((MASK) << (j * (POWER)))) != 0) break;                     \
    }

static void spk_scalar_block(const spk_job *jb, int64_t b) {
    const int64_t mask = jb->step - 1;
    for (int64_t n = 0; n < jb->n; ++n) {
        const int8_t *arow = jb->a + n * jb->k;
        for (int64_t o = b * 16; o < b * 16 + 16 && o < jb->o; ++o) {
            const int8_t *wrow = jb->w + o * jb->k;
            float acc[SPK_LEVELS] = {0.0f, 0.0f, 0.0f, 0.0f};
            for (int64_t g = 0; g < jb->g; ++g) {
                int32_t dot = 0;
                for (int64_t kk = g * jb->gs; kk < (g + 1) * jb->gs; ++kk) dot += (int32_t)arow[kk] * (int32_t)wrow[kk];
                float f = (float)dot;
                if (jb->s) f = f * jb->s[n * jb->g + g];
                if (jb->wg) f = f * jb->wg[o * jb->g + g];
                acc[0] = acc[0] + f;
                int64_t i = g + 1;
                if (i <= jb->full && i % jb->step == 0) { SPK_FOLD(acc, i, jb->power, mask) }
            }
            float r = acc[0];
            for (int j = 1; j < SPK_LEVELS; ++j) r = r + acc[j];
            jb->out[n * jb->o + o] = r;
        }
    }
}

#if SPK_VNNI
static void spk_vnni_block(const spk_job *jb, int64_t b, int8_t *pk, int32_t *corr, float *wgb) {
    const int64_t q4 = jb->gs / 4, G = jb->g, K = jb->k;
    const int64_t mask = jb->step - 1;
    /* repack 16 output rows as pk[(k / 4) * 64 + lane * 4 + k % 4] = w[b * 16 + lane][k]: a 16 x 16 transpose of
       dwords per 64 bytes of K (rows past O are zero) */
    const __m512i zero = _mm512_setzero_si512();
    for (int64_t k0 = 0; k0 < K; k0 += 64) {
        const int64_t dwords = (K - k0) / 4 < 16 ? (K - k0) / 4 : 16;
        const __mmask16 lm = (__mmask16)(dwords == 16 ? 0xFFFFu : ((1u << dwords) - 1u));
        __m512i r[16], t[16], u[16];
        for (int l = 0; l < 16; ++l) {
            int64_t o = b * 16 + l;
            r[l] = o < jb->o ? _mm512_maskz_loadu_epi32(lm, (const void *)(jb->w + o * K + k0)) : zero;
        }
        for (int i = 0; i < 8; ++i) {
            t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
        }
        for (int i = 0; i < 4; ++i) {
            u[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
            u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
            u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
            u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
        }
        int8_t *dst = pk + (k0 / 4) * 64;
        for (int j = 0; j < 4; ++j) {
            const __m512i x = _mm512_shuffle_i32x4(u[j], u[4 + j], 0x88), y = _mm512_shuffle_i32x4(u[j], u[4 + j], 0xDD);
            const __m512i x2 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0x88);
            const __m512i y2 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0xDD);
            const __m512i v[4] = {_mm512_shuffle_i32x4(x, x2, 0x88), _mm512_shuffle_i32x4(y, y2, 0x88),
                                  _mm512_shuffle_i32x4(x, x2, 0xDD), _mm512_shuffle_i32x4(y, y2, 0xDD)};
            for (int L = 0; L < 4; ++L)
                if (4 * L + j < dwords) _mm512_storeu_si512((void *)(dst + (4 * L + j) * 64), v[L]);
        }
    }
    /* each group's accumulator starts at -128 * sum(w): vpdpbusd of the bytes 0x80 with the packed weights */
    const __m512i c128 = _mm512_set1_epi32((int32_t)0x80808080u);
    for (int64_t g = 0; g < G; ++g) {
        __m512i sum = zero;
        for (int64_t c = 0; c < q4; ++c)
            sum = _mm512_dpbusd_epi32(sum, c128, _mm512_loadu_si512((const void *)(pk + (g * q4 + c) * 64)));
        _mm512_storeu_si512((void *)(corr + g * 16), _mm512_sub_epi32(zero, sum));
        if (jb->wg)
            for (int lane = 0; lane < 16; ++lane) {
                int64_t o = b * 16 + lane;
                wgb[g * 16 + lane] = o < jb->o ? jb->wg[o * G + g] : 0.0f;
            }
    }
    const int64_t valid = jb->o - b * 16 < 16 ? jb->o - b * 16 : 16;
    const __mmask16 store_mask = (__mmask16)((1u << valid) - 1u);
    for (int64_t n0 = 0; n0 < jb->n; n0 += SPK_TILE) {
        const uint8_t *rows[SPK_TILE];
        const float *srow[SPK_TILE];
        for (int t = 0; t < SPK_TILE; ++t) {
            int64_t n = n0 + t < jb->n ? n0 + t : jb->n - 1; /* a tail tile repeats the last token, not stored */
            rows[t] = jb->au + n * K;
            srow[t] = jb->s ? jb->s + n * G : NULL;
        }
        __m512 lv0[SPK_TILE], up[SPK_LEVELS - 1][SPK_TILE];
        for (int t = 0; t < SPK_TILE; ++t) {
            lv0[t] = _mm512_setzero_ps();
            for (int j = 0; j < SPK_LEVELS - 1; ++j) up[j][t] = _mm512_setzero_ps();
        }
        for (int64_t g = 0; g < G; ++g) {
            const __m512i c0 = _mm512_loadu_si512((const void *)(corr + g * 16));
            __m512i acc[SPK_TILE];
            for (int t = 0; t < SPK_TILE; ++t) acc[t] = c0;
            const int8_t *wp = pk + g * q4 * 64;
            const int64_t off = g * jb->gs;
            for (int64_t c = 0; c < q4; ++c) {
                const __m512i wv = _mm512_loadu_si512((const void *)(wp + c * 64));
                for (int t = 0; t < SPK_TILE; ++t) {
                    int32_t word;
                    memcpy(&word, rows[t] + off + 4 * c, 4);
                    acc[t] = _mm512_dpbusd_epi32(acc[t], _mm512_set1_epi32(word), wv);
                }
            }
            __m512 wgv = jb->wg ? _mm512_loadu_ps(wgb + g * 16) : _mm512_setzero_ps();
            for (int t = 0; t < SPK_TILE; ++t) {
                __m512 f = _mm512_cvtepi32_ps(acc[t]);
                if (jb->s) f = _mm512_mul_ps(f, _mm512_set1_ps(srow[t][g]));
                if (jb->wg) f = _mm512_mul_ps(f, wgv);
                lv0[t] = _mm512_add_ps(lv0[t], f);
            }
            const int64_t i = g + 1;
            if (i <= jb->full && i % jb->step == 0) {
                for (int t = 0; t < SPK_TILE; ++t) {
                    up[0][t] = _mm512_add_ps(up[0][t], lv0[t]);
                    lv0[t] = _mm512_setzero_ps();
                    for (int j = 2; j < SPK_LEVELS; ++j) {
                        if ((i & (mask << ((j - 1) * jb->power))) != 0) break;
                        up[j - 1][t] = _mm512_add_ps(up[j - 1][t], up[j - 2][t]);
                        up[j - 2][t] = _mm512_setzero_ps();
                    }
                }
            }
        }
        for (int t = 0; t < SPK_TILE && n0 + t < jb->n; ++t) {
            __m512 r = lv0[t];
            for (int j = 0; j < SPK_LEVELS - 1; ++j) r = _mm512_add_ps(r, up[j][t]);
            _mm512_mask_storeu_ps(jb->out + (n0 + t) * jb->o + b * 16, store_mask, r);
        }
    }
}
#endif

static void *spk_run(void *arg) {
    spk_job *jb = (spk_job *)arg;
#if SPK_VNNI
    if (jb->au) {
        int8_t *pk = (int8_t *)malloc((size_t)(16 * jb->k));
        int32_t *corr = (int32_t *)malloc((size_t)(16 * jb->g) * sizeof(int32_t));
        float *wgb = (float *)malloc((size_t)(16 * jb->g) * sizeof(float));
        if (!pk || !corr || !wgb) {
            free(pk); free(corr); free(wgb);
            jb->status = 2;
            return NULL;
        }
        for (int64_t b = jb->b0; b < jb->b1; ++b) spk_vnni_block(jb, b, pk, corr, wgb);
        free(pk); free(corr); free(wgb);
        return NULL;
    }
#endif
    for (int64_t b = jb->b0; b < jb->b1; ++b) spk_scalar_block(jb, b);
    return NULL;
}

/* Returns 0 on success, 1 for bad arguments, 2 when memory or threads could not be had. */
int spk_group_matmul(const int8_t *a, int64_t n, int64_t k, const int8_t *w, int64_t o, int64_t gs,
                     const float *s, const float *wg, float *out, int64_t nthreads, int use_vnni) {
    if (n < 1 || k < 1 || o < 1 || gs < 1 || k % gs != 0) return 1;
    if (use_vnni && (!SPK_VNNI || gs % 4 != 0)) return 1;
    spk_job base;
    memset(&base, 0, sizeof(base));
    base.a = a; base.w = w; base.s = s; base.wg = wg; base.out = out;
    base.n = n; base.k = k; base.o = o; base.gs = gs; base.g = k / gs;
    int64_t cl = spk_ceil_log2(base.g) / 4;
    base.power = cl > 4 ? cl : 4;
    base.step = (int64_t)1 << base.power;
    base.full = (base.g / base.step) * base.step;
    uint8_t *au = NULL;
    if (use_vnni) {
        au = (uint8_t *)malloc((size_t)(n * k));
        if (!au) return 2;
        for (int64_t i = 0; i < n * k; ++i) au[i] = (uint8_t)((uint8_t)a[i] ^ 0x80u);
        base.au = au;
    }
    const int64_t blocks = (o + 15) / 16;
    if (nthreads > blocks) nthreads = blocks;
    if (nthreads < 1 || n * o * k < (1 << 20)) nthreads = 1;
    if (nthreads > 64) nthreads = 64;
    spk_job jobs[64];
    for (int64_t t = 0; t < nthreads; ++t) {
        jobs[t] = base;
        jobs[t].b0 = blocks * t / nthreads;
        jobs[t].b1 = blocks * (t + 1) / nthreads;
    }
    int status = 0;
#ifdef _OPENMP
    /* OpenMP, not threads of our own: loaded after torch, this library binds to the libgomp torch already loaded
       (same soname), so the work runs on torch's own worker threads. A second pool would compete with torch's
       workers, which spin for a while after each torch op: measured 3x slower on 2 cores. */
#pragma omp parallel for num_threads((int)nthreads) schedule(static, 1)
    for (int64_t t = 0; t < nthreads; ++t) spk_run(&jobs[t]);
#else
    pthread_t tids[64];
    int64_t started = 0;
    for (int64_t t = 1; t < nthreads; ++t) {
        if (pthread_create(&tids[t], NULL, spk_run, &jobs[t]) != 0) break;
        started = t;
    }
    /* blocks of threads that could not start run here, after this thread's own share */
    spk_run(&jobs[0]);
    for (int64_t t = started + 1; t < nthreads; ++t) spk_run(&jobs[t]);
    for (int64_t t = 1; t <= started; ++t) pthread_join(tids[t], NULL);
#endif
    for (int64_t t = 0; t < nthreads; ++t) status = jobs[t].status ? jobs[t].status : status;
    free(au);
    return status;
}
