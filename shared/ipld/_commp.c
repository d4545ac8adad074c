/*
 * Streaming Filecoin commP (sha2-256-trunc254-padded binary tree over Fr32-expanded data).
 *
 * Same interface and tree bookkeeping as shared/ipld/commp_ref.py's Hasher, which is the spec;
 * this file only makes it fast: every tree node is SHA-256 of exactly 64 bytes, so the second
 * (padding) block is a constant whose message schedule is precomputed, and with SHA-NI two (four
 * inside a batch's subtree) independent nodes are hashed interleaved to hide the sha256rnds2
 * latency.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define HAVE_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

#define GROUP_IN 127
#define GROUP_LEVEL 2
#define MAX_LEVEL 64
/* Groups hashed as one subtree straight from the input: 64 groups = 256 leaves = height 8. */
#define BATCH_LOG2 6
#define BATCH (1 << BATCH_LOG2)

#include "sha256_common.h"

/* W[t] + K[t] of the padding block that follows every 64-byte message. */
static uint32_t PAD_WK[64];
static uint8_t ZERO[MAX_LEVEL + 1][32];

/* ---------- portable SHA-256 ---------- */

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static inline uint32_t load_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void pad_schedule(uint32_t w[64]) {
    memset(w, 0, 64 * sizeof(uint32_t));
    w[0] = 0x80000000u;
    w[15] = 512; /* message length in bits */
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = ROR(w[t - 15], 7) ^ ROR(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = ROR(w[t - 2], 17) ^ ROR(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
}

/* Rounds over a ready W+K schedule. */
static void rounds(uint32_t st[8], const uint32_t wk[64]) {
    uint32_t a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
    for (int t = 0; t < 64; t++) {
        uint32_t t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + wk[t];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    st[0] += a; st[1] += b; st[2] += c; st[3] += d; st[4] += e; st[5] += f; st[6] += g; st[7] += h;
}

static void node_portable(const uint8_t in[64], uint8_t out[32]) {
    uint32_t w[64], st[8];
    for (int t = 0; t < 16; t++) w[t] = load_be32(in + 4 * t);
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = ROR(w[t - 15], 7) ^ ROR(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = ROR(w[t - 2], 17) ^ ROR(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    for (int t = 0; t < 64; t++) w[t] += K[t];
    memcpy(st, IV, sizeof st);
    rounds(st, w);
    rounds(st, PAD_WK);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = st[i] >> 24; out[4 * i + 1] = st[i] >> 16;
        out[4 * i + 2] = st[i] >> 8; out[4 * i + 3] = st[i];
    }
    out[31] &= 0x3f;
}

static void node2_portable(const uint8_t *in0, const uint8_t *in1, uint8_t *out0, uint8_t *out1) {
    uint8_t a[32], b[32]; /* outputs may alias inputs */
    node_portable(in0, a);
    node_portable(in1, b);
    memcpy(out0, a, 32);
    memcpy(out1, b, 32);
}

/* ---------- SHA-NI ---------- */
#ifdef HAVE_X86
#define SHANI __attribute__((target("sha,sse4.1,ssse3")))

/* One 64-byte block of the message, both lanes, plus the constant padding block. */
SHANI static void node2_shani(const uint8_t *in0, const uint8_t *in1, uint8_t *out0, uint8_t *out1) {
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    /* IV in the ABEF/CDGH lane order sha256rnds2 expects. */
    const __m128i iv0 = _mm_set_epi32(0x6a09e667, 0xbb67ae85, 0x510e527f, 0x9b05688c);
    const __m128i iv1 = _mm_set_epi32(0x3c6ef372, 0xa54ff53a, 0x1f83d9ab, 0x5be0cd19);
    __m128i a0 = iv0, a1 = iv1, b0 = iv0, b1 = iv1;
    __m128i ma[4], mb[4];
    for (int i = 0; i < 4; i++) {
        ma[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in0 + 16 * i)), bswap);
        mb[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in1 + 16 * i)), bswap);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) {
        if (i >= 4) {
            /* W[t..t+3] from W[t-16..t-13], W[t-15..], W[t-7..t-4], W[t-2..t-1] */
            __m128i ta = _mm_sha256msg1_epu32(ma[i & 3], ma[(i + 1) & 3]);
            __m128i tb = _mm_sha256msg1_epu32(mb[i & 3], mb[(i + 1) & 3]);
            ta = _mm_add_epi32(ta, _mm_alignr_epi8(ma[(i + 3) & 3], ma[(i + 2) & 3], 4));
            tb = _mm_add_epi32(tb, _mm_alignr_epi8(mb[(i + 3) & 3], mb[(i + 2) & 3], 4));
            ma[i & 3] = _mm_sha256msg2_epu32(ta, ma[(i + 3) & 3]);
            mb[i & 3] = _mm_sha256msg2_epu32(tb, mb[(i + 3) & 3]);
        }
        __m128i k = _mm_loadu_si128((const __m128i *)&K[4 * i]);
        __m128i ka = _mm_add_epi32(ma[i & 3], k), kb = _mm_add_epi32(mb[i & 3], k);
        a1 = _mm_sha256rnds2_epu32(a1, a0, ka);
        b1 = _mm_sha256rnds2_epu32(b1, b0, kb);
        a0 = _mm_sha256rnds2_epu32(a0, a1, _mm_shuffle_epi32(ka, 0x0e));
        b0 = _mm_sha256rnds2_epu32(b0, b1, _mm_shuffle_epi32(kb, 0x0e));
    }
    a0 = _mm_add_epi32(a0, iv0); a1 = _mm_add_epi32(a1, iv1);
    b0 = _mm_add_epi32(b0, iv0); b1 = _mm_add_epi32(b1, iv1);
    __m128i sa0 = a0, sa1 = a1, sb0 = b0, sb1 = b1;
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) {
        __m128i wk = _mm_loadu_si128((const __m128i *)&PAD_WK[4 * i]);
        a1 = _mm_sha256rnds2_epu32(a1, a0, wk);
        b1 = _mm_sha256rnds2_epu32(b1, b0, wk);
        wk = _mm_shuffle_epi32(wk, 0x0e);
        a0 = _mm_sha256rnds2_epu32(a0, a1, wk);
        b0 = _mm_sha256rnds2_epu32(b0, b1, wk);
    }
    a0 = _mm_add_epi32(a0, sa0); a1 = _mm_add_epi32(a1, sa1);
    b0 = _mm_add_epi32(b0, sb0); b1 = _mm_add_epi32(b1, sb1);

    /* ABEF/CDGH back to big-endian A..H, then clear the top two bits of the last byte. */
    const __m128i be = _mm_set_epi8(12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3);
    const __m128i mask = _mm_set_epi32(0x3fffffff, -1, -1, -1);
    __m128i s[2][2] = {{a0, a1}, {b0, b1}};
    uint8_t *outs[2] = {out0, out1};
    for (int j = 0; j < 2; j++) {
        __m128i tmp = _mm_shuffle_epi32(s[j][0], 0x1b); /* FEBA */
        __m128i x1 = _mm_shuffle_epi32(s[j][1], 0xb1);  /* DCHG */
        __m128i lo = _mm_blend_epi16(tmp, x1, 0xf0);    /* DCBA */
        __m128i hi = _mm_alignr_epi8(x1, tmp, 8);       /* HGFE */
        _mm_storeu_si128((__m128i *)outs[j], _mm_shuffle_epi8(lo, be));
        _mm_storeu_si128((__m128i *)(outs[j] + 16), _mm_and_si128(_mm_shuffle_epi8(hi, be), mask));
    }
}

/* Four independent nodes interleaved: sha256rnds2 has a latency of several cycles but can issue
 * about once per cycle on recent cores, so two lanes leave it half idle. All inputs are loaded
 * before any output is stored (outputs may alias inputs). */
SHANI static void node4_shani(const uint8_t *const in[4], uint8_t *const out[4]) {
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    const __m128i iv0 = _mm_set_epi32(0x6a09e667, 0xbb67ae85, 0x510e527f, 0x9b05688c);
    const __m128i iv1 = _mm_set_epi32(0x3c6ef372, 0xa54ff53a, 0x1f83d9ab, 0x5be0cd19);
    __m128i s0[4], s1[4], m[4][4], t[4];
#pragma GCC unroll 4
    for (int l = 0; l < 4; l++) {
        s0[l] = iv0; s1[l] = iv1;
        for (int i = 0; i < 4; i++)
            m[l][i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in[l] + 16 * i)), bswap);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) {
        __m128i k = _mm_loadu_si128((const __m128i *)&K[4 * i]);
        __m128i wk[4];
#pragma GCC unroll 4
        for (int l = 0; l < 4; l++) {
            if (i >= 4) {
                t[l] = _mm_sha256msg1_epu32(m[l][i & 3], m[l][(i + 1) & 3]);
                t[l] = _mm_add_epi32(t[l], _mm_alignr_epi8(m[l][(i + 3) & 3], m[l][(i + 2) & 3], 4));
                m[l][i & 3] = _mm_sha256msg2_epu32(t[l], m[l][(i + 3) & 3]);
            }
            wk[l] = _mm_add_epi32(m[l][i & 3], k);
        }
#pragma GCC unroll 4
        for (int l = 0; l < 4; l++) s1[l] = _mm_sha256rnds2_epu32(s1[l], s0[l], wk[l]);
#pragma GCC unroll 4
        for (int l = 0; l < 4; l++) s0[l] = _mm_sha256rnds2_epu32(s0[l], s1[l], _mm_shuffle_epi32(wk[l], 0x0e));
    }
    __m128i p0[4], p1[4];
#pragma GCC unroll 4
    for (int l = 0; l < 4; l++) {
        s0[l] = _mm_add_epi32(s0[l], iv0); s1[l] = _mm_add_epi32(s1[l], iv1);
        p0[l] = s0[l]; p1[l] = s1[l];
    }
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) {
        __m128i wk = _mm_loadu_si128((const __m128i *)&PAD_WK[4 * i]);
        __m128i wk2 = _mm_shuffle_epi32(wk, 0x0e);
#pragma GCC unroll 4
        for (int l = 0; l < 4; l++) s1[l] = _mm_sha256rnds2_epu32(s1[l], s0[l], wk);
#pragma GCC unroll 4
        for (int l = 0; l < 4; l++) s0[l] = _mm_sha256rnds2_epu32(s0[l], s1[l], wk2);
    }
    const __m128i be = _mm_set_epi8(12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3);
    const __m128i mask = _mm_set_epi32(0x3fffffff, -1, -1, -1);
#pragma GCC unroll 4
    for (int l = 0; l < 4; l++) {
        __m128i a0 = _mm_add_epi32(s0[l], p0[l]), a1 = _mm_add_epi32(s1[l], p1[l]);
        __m128i tmp = _mm_shuffle_epi32(a0, 0x1b); /* FEBA */
        __m128i x1 = _mm_shuffle_epi32(a1, 0xb1);  /* DCHG */
        __m128i lo = _mm_blend_epi16(tmp, x1, 0xf0);
        __m128i hi = _mm_alignr_epi8(x1, tmp, 8);
        _mm_storeu_si128((__m128i *)out[l], _mm_shuffle_epi8(lo, be));
        _mm_storeu_si128((__m128i *)(out[l] + 16), _mm_and_si128(_mm_shuffle_epi8(hi, be), mask));
    }
}

#endif

typedef void (*node2_fn)(const uint8_t *, const uint8_t *, uint8_t *, uint8_t *);
typedef void (*node4_fn)(const uint8_t *const[4], uint8_t *const[4]);

static void node4_portable(const uint8_t *const in[4], uint8_t *const out[4]) {
    uint8_t tmp[4][32]; /* outputs may alias inputs */
    for (int l = 0; l < 4; l++) node_portable(in[l], tmp[l]);
    for (int l = 0; l < 4; l++) memcpy(out[l], tmp[l], 32);
}

/* ---------- Fr32 and the tree ---------- */

/* 127 bytes -> four 32-byte leaves: each 254-bit run (LSB first) gets two zero bits on top. */
static void fr32_expand(const uint8_t *in, uint8_t *out) {
    memcpy(out, in, 32);
    out[31] &= 0x3f;
    for (int i = 0; i < 32; i++) out[32 + i] = (uint8_t)((in[31 + i] >> 6) | (in[32 + i] << 2));
    out[63] &= 0x3f;
    for (int i = 0; i < 32; i++) out[64 + i] = (uint8_t)((in[63 + i] >> 4) | (in[64 + i] << 4));
    out[95] &= 0x3f;
    for (int i = 0; i < 31; i++) out[96 + i] = (uint8_t)((in[95 + i] >> 2) | (in[96 + i] << 6));
    out[127] = in[126] >> 2;
}

typedef struct {
    uint8_t stack[MAX_LEVEL + 1][32];
    uint8_t have[MAX_LEVEL + 1];
    uint8_t spine[MAX_LEVEL + 1][32];
    uint64_t count[MAX_LEVEL + 1];
    uint8_t buf[GROUP_IN];
    size_t buflen;
    uint64_t groups;
} Tree;

static void push(Tree *t, node2_fn h2, int level, const uint8_t *node) {
    uint8_t cur[32], pair[64], dummy[32];
    memcpy(cur, node, 32);
    while (level <= MAX_LEVEL) {
        if (t->count[level] < 2 && ++t->count[level] == 2) memcpy(t->spine[level], cur, 32);
        if (!t->have[level]) {
            memcpy(t->stack[level], cur, 32);
            t->have[level] = 1;
            return;
        }
        t->have[level] = 0;
        memcpy(pair, t->stack[level], 32);
        memcpy(pair + 32, cur, 32);
        h2(pair, pair, cur, dummy);
        level++;
    }
}

static void group_leaves_to_node(node2_fn h2, uint8_t leaves[128], uint8_t out[32]) {
    h2(leaves, leaves + 64, leaves, leaves + 32);
    h2(leaves, leaves, out, leaves + 64);
}

static void push_group(Tree *t, node2_fn h2, const uint8_t *in) {
    uint8_t leaves[128], n[32];
    fr32_expand(in, leaves);
    group_leaves_to_node(h2, leaves, n);
    push(t, h2, GROUP_LEVEL, n);
    t->groups++;
}

/* BATCH aligned groups -> one node at level GROUP_LEVEL + BATCH_LOG2, pairs hashed four (at the
 * top two) at a time. Node j of a row goes to leaves + 32 * j, over the pair it was made from. */
static void push_batch(Tree *t, node2_fn h2, node4_fn h4, const uint8_t *in) {
    uint8_t leaves[BATCH * 128];
    for (int g = 0; g < BATCH; g++) fr32_expand(in + g * GROUP_IN, leaves + g * 128);
    for (int n = BATCH * 4; n > 1; n /= 2) {
        int i = 0;
        for (; i + 4 <= n / 2; i += 4) {
            const uint8_t *const src[4] = {leaves + 64 * i, leaves + 64 * (i + 1), leaves + 64 * (i + 2),
                                           leaves + 64 * (i + 3)};
            uint8_t *const dst[4] = {leaves + 32 * i, leaves + 32 * (i + 1), leaves + 32 * (i + 2),
                                     leaves + 32 * (i + 3)};
            h4(src, dst);
        }
        for (; i < n / 2; i += 2)
            h2(leaves + 64 * i, leaves + 64 * (i + 1), leaves + 32 * i, leaves + 32 * (i + 1));
    }
    push(t, h2, GROUP_LEVEL + BATCH_LOG2, leaves);
    t->groups += BATCH;
}

static void tree_update(Tree *t, node2_fn h2, node4_fn h4, const uint8_t *p, size_t n) {
    if (t->buflen) {
        size_t take = GROUP_IN - t->buflen < n ? GROUP_IN - t->buflen : n;
        memcpy(t->buf + t->buflen, p, take);
        t->buflen += take; p += take; n -= take;
        if (t->buflen < GROUP_IN) return;
        push_group(t, h2, t->buf);
        t->buflen = 0;
    }
    while (n >= GROUP_IN) {
        /* Batches only once the first batch went group by group, so the spine's low levels exist. */
        if (t->groups >= BATCH && t->groups % BATCH == 0 && n >= (size_t)BATCH * GROUP_IN) {
            push_batch(t, h2, h4, p);
            p += BATCH * GROUP_IN; n -= BATCH * GROUP_IN;
        } else {
            push_group(t, h2, p);
            p += GROUP_IN; n -= GROUP_IN;
        }
    }
    memcpy(t->buf, p, n);
    t->buflen = n;
}

/* Pads the (copied) tree with zero subtrees until one root at >= min_level remains. */
static int tree_finish(Tree *t, node2_fn h2, int min_level, int empty) {
    if (t->buflen || empty) {
        memset(t->buf + t->buflen, 0, GROUP_IN - t->buflen);
        push_group(t, h2, t->buf);
        t->buflen = 0;
    }
    for (;;) {
        int low = -1, nhave = 0;
        for (int l = 0; l <= MAX_LEVEL; l++)
            if (t->have[l]) { if (low < 0) low = l; nhave++; }
        if (nhave == 1 && low >= min_level) return low;
        if (low >= MAX_LEVEL) return -1;
        push(t, h2, low, ZERO[low]);
    }
}

/* ---------- Python type ---------- */

typedef struct {
    PyObject_HEAD
    Tree tree;
    node2_fn h2;
    node4_fn h4;
    unsigned long long total;
    int busy;
} HasherObject;

static int Hasher_init(HasherObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"use_shani", NULL};
    int use_shani = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|p", kwlist, &use_shani)) return -1;
    memset(&self->tree, 0, sizeof self->tree);
    self->total = 0;
    self->busy = 0;
    self->h2 = node2_portable;
    self->h4 = node4_portable;
#ifdef HAVE_X86
    if (use_shani && cpu_has_shani()) {
        self->h2 = node2_shani;
        self->h4 = node4_shani;
    }
#endif
    return 0;
}

static PyObject *Hasher_update(HasherObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    if (self->busy) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_RuntimeError, "commP hasher used from two threads at once");
        return NULL;
    }
    self->busy = 1;
    if (view.len >= 4096) {
        Py_BEGIN_ALLOW_THREADS
        tree_update(&self->tree, self->h2, self->h4, view.buf, (size_t)view.len);
        Py_END_ALLOW_THREADS
    } else {
        tree_update(&self->tree, self->h2, self->h4, view.buf, (size_t)view.len);
    }
    self->total += (unsigned long long)view.len;
    self->busy = 0;
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

static PyObject *Hasher_finish(HasherObject *self, PyObject *args) {
    int min_level = 0;
    if (!PyArg_ParseTuple(args, "|i", &min_level)) return NULL;
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "commP hasher used from two threads at once");
        return NULL;
    }
    Tree t = self->tree; /* finishing pads a copy, so the stream can go on */
    int top = tree_finish(&t, self->h2, min_level, self->total == 0);
    if (top < 0) {
        PyErr_SetString(PyExc_ValueError, "piece too large");
        return NULL;
    }
    PyObject *spine = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)32 * (top > GROUP_LEVEL ? top - GROUP_LEVEL : 0));
    if (!spine) return NULL;
    for (int l = GROUP_LEVEL; l < top; l++) memcpy(PyBytes_AS_STRING(spine) + 32 * (l - GROUP_LEVEL), t.spine[l], 32);
    return Py_BuildValue("(y#iN)", (const char *)t.stack[top], (Py_ssize_t)32, top, spine);
}

static PyObject *Hasher_get_total(HasherObject *self, void *closure) {
    return PyLong_FromUnsignedLongLong(self->total);
}

static PyObject *Hasher_get_shani(HasherObject *self, void *closure) {
    return PyBool_FromLong(self->h2 != node2_portable);
}

static PyMethodDef Hasher_methods[] = {
    {"update", (PyCFunction)Hasher_update, METH_O, "Feed payload bytes (any buffer); releases the GIL."},
    {"finish", (PyCFunction)Hasher_finish, METH_VARARGS, "finish(min_level=0) -> (root, level, spine)"},
    {NULL}};

static PyGetSetDef Hasher_getset[] = {
    {"total", (getter)Hasher_get_total, NULL, "payload bytes fed so far", NULL},
    {"uses_shani", (getter)Hasher_get_shani, NULL, "whether SHA-NI is in use", NULL},
    {NULL}};

static PyTypeObject HasherType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shared.ipld._commp.Hasher",
    .tp_basicsize = sizeof(HasherObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Hasher_init,
    .tp_methods = Hasher_methods,
    .tp_getset = Hasher_getset,
};

static PyObject *mod_has_shani(PyObject *m, PyObject *unused) { return PyBool_FromLong(cpu_has_shani()); }

static PyMethodDef module_methods[] = {
    {"cpu_has_shani", mod_has_shani, METH_NOARGS, "whether this CPU has the SHA extensions"},
    {NULL}};

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "_commp", NULL, -1, module_methods};

PyMODINIT_FUNC PyInit__commp(void) {
    uint32_t w[64];
    pad_schedule(w);
    for (int t = 0; t < 64; t++) PAD_WK[t] = w[t] + K[t];
    memset(ZERO[0], 0, 32);
    for (int l = 1; l <= MAX_LEVEL; l++) {
        uint8_t pair[64];
        memcpy(pair, ZERO[l - 1], 32);
        memcpy(pair + 32, ZERO[l - 1], 32);
        node_portable(pair, ZERO[l]);
    }
    if (PyType_Ready(&HasherType) < 0) return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (!m) return NULL;
    Py_INCREF(&HasherType);
    if (PyModule_AddObject(m, "Hasher", (PyObject *)&HasherType) < 0) {
        Py_DECREF(&HasherType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
