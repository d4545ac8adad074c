/*
 * The per-file path of packing many small files, done for a batch of files at once.
 *
 * For each file of one block or less: open it (beneath a directory fd, without following a
 * symbolic link when asked), check it is the regular file of the size and mtime recorded at scan
 * time, read its byte range, check again, close it, and lay out its CAR frame
 * (varint length, raw-codec CIDv1 of the SHA-256 of the bytes, the bytes) in one buffer. The
 * I/O and hashing run without the GIL. The first file that fails any step ends the batch: the
 * caller redoes it on its Python path, which raises the error it always raised (or packs the
 * file, if the failure is gone), so the checks and their messages live in one place.
 *
 * Also: base32 text of binary CIDs, the cost of every CID shown, stored or indexed.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#define HAVE_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

#define CID_LEN 36 /* 0x01 0x55 0x12 0x20 + 32-byte digest */

#include "sha256_common.h"

/* ---------- SHA-256 of a whole message ---------- */

typedef void (*blocks_fn)(uint32_t st[8], const uint8_t *p, size_t nblocks);

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void blocks_portable(uint32_t st[8], const uint8_t *p, size_t nblocks) {
    for (; nblocks; nblocks--, p += 64) {
        uint32_t w[64];
        for (int t = 0; t < 16; t++)
            w[t] = ((uint32_t)p[4 * t] << 24) | ((uint32_t)p[4 * t + 1] << 16) | ((uint32_t)p[4 * t + 2] << 8) | p[4 * t + 3];
        for (int t = 16; t < 64; t++) {
            uint32_t s0 = ROR(w[t - 15], 7) ^ ROR(w[t - 15], 18) ^ (w[t - 15] >> 3);
            uint32_t s1 = ROR(w[t - 2], 17) ^ ROR(w[t - 2], 19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16] + s0 + w[t - 7] + s1;
        }
        uint32_t a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
        for (int t = 0; t < 64; t++) {
            uint32_t t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + w[t];
            uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
        }
        st[0] += a; st[1] += b; st[2] += c; st[3] += d; st[4] += e; st[5] += f; st[6] += g; st[7] += h;
    }
}

#ifdef HAVE_X86
#define SHANI __attribute__((target("sha,sse4.1,ssse3")))

SHANI static void blocks_shani(uint32_t st[8], const uint8_t *p, size_t nblocks) {
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    /* The state in the ABEF/CDGH lane order sha256rnds2 works on. */
    __m128i s0 = _mm_set_epi32((int)st[0], (int)st[1], (int)st[4], (int)st[5]);
    __m128i s1 = _mm_set_epi32((int)st[2], (int)st[3], (int)st[6], (int)st[7]);
    for (; nblocks; nblocks--, p += 64) {
        __m128i save0 = s0, save1 = s1, m[4];
        for (int i = 0; i < 4; i++) m[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), bswap);
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) {
            if (i >= 4) {
                __m128i t = _mm_sha256msg1_epu32(m[i & 3], m[(i + 1) & 3]);
                t = _mm_add_epi32(t, _mm_alignr_epi8(m[(i + 3) & 3], m[(i + 2) & 3], 4));
                m[i & 3] = _mm_sha256msg2_epu32(t, m[(i + 3) & 3]);
            }
            __m128i wk = _mm_add_epi32(m[i & 3], _mm_loadu_si128((const __m128i *)&K[4 * i]));
            s1 = _mm_sha256rnds2_epu32(s1, s0, wk);
            s0 = _mm_sha256rnds2_epu32(s0, s1, _mm_shuffle_epi32(wk, 0x0e));
        }
        s0 = _mm_add_epi32(s0, save0);
        s1 = _mm_add_epi32(s1, save1);
    }
    uint32_t o0[4], o1[4];
    _mm_storeu_si128((__m128i *)o0, s0);
    _mm_storeu_si128((__m128i *)o1, s1);
    st[0] = o0[3]; st[1] = o0[2]; st[4] = o0[1]; st[5] = o0[0];
    st[2] = o1[3]; st[3] = o1[2]; st[6] = o1[1]; st[7] = o1[0];
}

#endif

static blocks_fn BLOCKS = blocks_portable;

static void sha256(blocks_fn blocks, const uint8_t *p, size_t n, uint8_t out[32]) {
    uint32_t st[8];
    uint8_t tail[128];
    memcpy(st, IV, sizeof st);
    size_t whole = n / 64;
    if (whole) blocks(st, p, whole);
    size_t rest = n - whole * 64;
    memcpy(tail, p + whole * 64, rest);
    tail[rest] = 0x80;
    size_t padded = rest + 9 <= 64 ? 64 : 128;
    memset(tail + rest + 1, 0, padded - rest - 1);
    uint64_t bits = (uint64_t)n * 8;
    for (int i = 0; i < 8; i++) tail[padded - 1 - i] = (uint8_t)(bits >> (8 * i));
    blocks(st, tail, padded / 64);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(st[i] >> 24); out[4 * i + 1] = (uint8_t)(st[i] >> 16);
        out[4 * i + 2] = (uint8_t)(st[i] >> 8); out[4 * i + 3] = (uint8_t)st[i];
    }
}

/* ---------- the batch ---------- */

static size_t varint_len(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) { v >>= 7; n++; }
    return n;
}

static size_t varint_put(uint8_t *p, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) { p[n++] = (uint8_t)(v | 0x80); v >>= 7; }
    p[n++] = (uint8_t)v;
    return n;
}

typedef struct {
    const char *name;
    long long start, end, size;
    double mtime;
    int has_mtime;
    size_t pos, frame; /* where its frame starts in the buffer, and its length */
} Item;

static int same(const struct stat *st, const Item *it) {
    if (!S_ISREG(st->st_mode) || (long long)st->st_size != it->size) return 0;
    /* As Python's st_mtime (seconds + nanoseconds * 1e-9, a double) and the Python check. */
    double m = (double)st->st_mtim.tv_sec + (double)st->st_mtim.tv_nsec * 1e-9;
    return !it->has_mtime || !(fabs(m - it->mtime) > 1e-6);
}

/* The items done before the first that failed; their frames fill buf from 0. */
static Py_ssize_t run_batch(int dir_fd, int nofollow, Item *items, Py_ssize_t n, uint8_t *buf, blocks_fn blocks) {
    size_t pos = 0;
    int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | (nofollow ? O_NOFOLLOW : 0);
    for (Py_ssize_t i = 0; i < n; i++) {
        Item *it = &items[i];
        size_t want = (size_t)(it->end - it->start);
        size_t head = varint_len(CID_LEN + want) + CID_LEN;
        uint8_t *data = buf + pos + head;
        int fd = openat(dir_fd, it->name, flags);
        if (fd < 0) return i;
        struct stat st;
        int ok = fstat(fd, &st) == 0 && same(&st, it);
        size_t got = 0;
        while (ok && got < want) {
            ssize_t r = pread(fd, data + got, want - got, (off_t)(it->start + (long long)got));
            if (r <= 0) ok = 0;
            else got += (size_t)r;
        }
        ok = ok && fstat(fd, &st) == 0 && same(&st, it);
        close(fd);
        if (!ok) return i;
        uint8_t *p = buf + pos;
        p += varint_put(p, CID_LEN + want);
        p[0] = 0x01; p[1] = 0x55; p[2] = 0x12; p[3] = 0x20;
        sha256(blocks, data, want, p + 4);
        it->pos = pos;
        it->frame = head + want;
        pos += head + want;
    }
    return n;
}

static int get_ll(PyObject *obj, const char *attr, long long *out) {
    PyObject *v = PyObject_GetAttrString(obj, attr);
    if (!v) return -1;
    *out = PyLong_AsLongLong(v);
    Py_DECREF(v);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

PyDoc_STRVAR(read_blocks_doc,
"read_blocks(dir_fd, names, entries, nofollow, seen, use_shani=True) -> (frames, cids, positions, done)\n\n"
"CAR frames of the files names[i] (opened at dir_fd; an absolute name ignores it) holding the byte\n"
"ranges entries[i].start..end (objects with start, end, size, mtime), one raw block each. `seen` is\n"
"the CAR's set of written CIDs: a block already in it (or earlier in the batch) gets no frame and\n"
"the position -1. `done` files were read; entry `done`, if any, failed a check or a read.");

static PyObject *read_blocks(PyObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"dir_fd", "names", "entries", "nofollow", "seen", "use_shani", NULL};
    int dir_fd, nofollow, use_shani = 1;
    PyObject *names, *entries, *seen;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iO!O!pO!|p", kwlist, &dir_fd, &PyList_Type, &names, &PyList_Type,
                                     &entries, &nofollow, &PySet_Type, &seen, &use_shani))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(names);
    if (PyList_GET_SIZE(entries) != n) {
        PyErr_SetString(PyExc_ValueError, "names and entries differ in length");
        return NULL;
    }
    Item *items = PyMem_Calloc((size_t)n + 1, sizeof(Item));
    PyObject **encoded = PyMem_Calloc((size_t)n + 1, sizeof(PyObject *));
    PyObject *frames = NULL, *cids = NULL, *positions = NULL, *result = NULL;
    if (!items || !encoded) { PyErr_NoMemory(); goto out; }
    size_t cap = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Item *it = &items[i];
        PyObject *e = PyList_GET_ITEM(entries, i);
        if (!PyUnicode_FSConverter(PyList_GET_ITEM(names, i), &encoded[i])) goto out;
        it->name = PyBytes_AS_STRING(encoded[i]);
        if (get_ll(e, "start", &it->start) < 0 || get_ll(e, "end", &it->end) < 0 || get_ll(e, "size", &it->size) < 0)
            goto out;
        if (!(0 <= it->start && it->start <= it->end && it->end <= it->size) || it->end - it->start > (1LL << 30)) {
            PyErr_SetString(PyExc_ValueError, "bad byte range for a one-block file");
            goto out;
        }
        PyObject *m = PyObject_GetAttrString(e, "mtime");
        if (!m) goto out;
        it->has_mtime = m != Py_None;
        it->mtime = it->has_mtime ? PyFloat_AsDouble(m) : 0.0;
        Py_DECREF(m);
        if (it->has_mtime && it->mtime == -1.0 && PyErr_Occurred()) goto out;
        size_t want = (size_t)(it->end - it->start);
        cap += varint_len(CID_LEN + want) + CID_LEN + want;
    }
    frames = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)cap);
    if (!frames) goto out;
    uint8_t *buf = (uint8_t *)PyBytes_AS_STRING(frames);
    blocks_fn blocks = use_shani ? BLOCKS : blocks_portable;
    Py_ssize_t done;
    Py_BEGIN_ALLOW_THREADS
    done = run_batch(dir_fd, nofollow, items, n, buf, blocks);
    Py_END_ALLOW_THREADS
    cids = PyList_New(done);
    positions = PyList_New(done);
    if (!cids || !positions) goto out;
    /* Drop the frames of blocks the CAR already has, closing the gaps. */
    size_t w = 0;
    for (Py_ssize_t i = 0; i < done; i++) {
        Item *it = &items[i];
        size_t head = it->frame - (size_t)(it->end - it->start);
        PyObject *cid = PyBytes_FromStringAndSize((const char *)buf + it->pos + head - CID_LEN, CID_LEN);
        if (!cid) goto out;
        PyList_SET_ITEM(cids, i, cid);
        int dup = PySet_Contains(seen, cid);
        if (dup < 0) goto out;
        long long at = -1;
        if (!dup) {
            if (PySet_Add(seen, cid) < 0) goto out;
            if (w != it->pos) memmove(buf + w, buf + it->pos, it->frame);
            at = (long long)w;
            w += it->frame;
        }
        PyObject *p = PyLong_FromLongLong(at);
        if (!p) goto out;
        PyList_SET_ITEM(positions, i, p);
    }
    if ((size_t)PyBytes_GET_SIZE(frames) != w && _PyBytes_Resize(&frames, (Py_ssize_t)w) < 0) goto out;
    result = Py_BuildValue("(NNNn)", frames, cids, positions, done);
    frames = cids = positions = NULL;
out:
    Py_XDECREF(frames);
    Py_XDECREF(cids);
    Py_XDECREF(positions);
    if (encoded)
        for (Py_ssize_t i = 0; i < n; i++) Py_XDECREF(encoded[i]);
    PyMem_Free(encoded);
    PyMem_Free(items);
    return result;
}

static PyObject *py_sha256(PyObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"data", "use_shani", NULL};
    Py_buffer view;
    int use_shani = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*|p", kwlist, &view, &use_shani)) return NULL;
    uint8_t out[32];
    sha256(use_shani ? BLOCKS : blocks_portable, view.buf, (size_t)view.len, out);
    PyBuffer_Release(&view);
    return PyBytes_FromStringAndSize((const char *)out, 32);
}

/* ---------- base32 ---------- */

static PyObject *cid_text(PyObject *self, PyObject *arg) {
    static const char ALPHABET[] = "abcdefghijklmnopqrstuvwxyz234567";
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const uint8_t *p = view.buf;
    Py_ssize_t n = view.len, len = 1 + (n * 8 + 4) / 5;
    PyObject *text = PyUnicode_New(len, 127);
    if (!text) { PyBuffer_Release(&view); return NULL; }
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(text);
    *out++ = 'b'; /* multibase: RFC 4648 base32, lower case, no padding */
    uint64_t acc = 0;
    int bits = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        acc = (acc << 8) | p[i];
        bits += 8;
        while (bits >= 5) { bits -= 5; *out++ = (Py_UCS1)ALPHABET[(acc >> bits) & 31]; }
    }
    if (bits) *out++ = (Py_UCS1)ALPHABET[(acc << (5 - bits)) & 31];
    PyBuffer_Release(&view);
    return text;
}

/* The inverse, for CID text read back from the database. None when `text` is not 'b' + base32
 * (lower or upper case, no padding): the caller says why. */
static PyObject *cid_bytes(PyObject *self, PyObject *arg) {
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "CID text must be str");
        return NULL;
    }
    if (!PyUnicode_IS_ASCII(arg)) Py_RETURN_NONE;
    const Py_UCS1 *p = PyUnicode_1BYTE_DATA(arg);
    Py_ssize_t n = PyUnicode_GET_LENGTH(arg);
    if (n < 1 || p[0] != 'b') Py_RETURN_NONE;
    Py_ssize_t chars = n - 1, len = chars * 5 / 8;
    int rest = (int)(chars * 5 % 8);
    if (rest >= 5) Py_RETURN_NONE; /* a length no whole number of bytes encodes to */
    PyObject *out = PyBytes_FromStringAndSize(NULL, len);
    if (!out) return NULL;
    uint8_t *o = (uint8_t *)PyBytes_AS_STRING(out);
    uint64_t acc = 0;
    int bits = 0;
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 1; i < n; i++) {
        unsigned c = p[i], v;
        if (c >= 'a' && c <= 'z') v = c - 'a';
        else if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= '2' && c <= '7') v = c - '2' + 26;
        else { Py_DECREF(out); Py_RETURN_NONE; }
        acc = (acc << 5) | v;
        bits += 5;
        if (bits >= 8) { bits -= 8; o[k++] = (uint8_t)(acc >> bits); }
    }
    return out; /* leftover bits are dropped, as base64.b32decode does */
}

static PyObject *mod_has_shani(PyObject *m, PyObject *unused) { return PyBool_FromLong(BLOCKS != blocks_portable); }

static PyMethodDef module_methods[] = {
    {"read_blocks", (PyCFunction)(void (*)(void))read_blocks, METH_VARARGS | METH_KEYWORDS, read_blocks_doc},
    {"sha256", (PyCFunction)(void (*)(void))py_sha256, METH_VARARGS | METH_KEYWORDS,
     "sha256(data, use_shani=True) -> digest (the hash read_blocks uses; for tests)"},
    {"cid_text", cid_text, METH_O, "cid_text(cid bytes) -> 'b' + base32 lower case without padding"},
    {"cid_bytes", cid_bytes, METH_O, "cid_bytes(text) -> the bytes of cid_text's form, or None"},
    {"uses_shani", mod_has_shani, METH_NOARGS, "whether read_blocks hashes with the SHA extensions"},
    {NULL}};

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "_smallfiles", NULL, -1, module_methods};

PyMODINIT_FUNC PyInit__smallfiles(void) {
#ifdef HAVE_X86
    if (cpu_has_shani()) BLOCKS = blocks_shani;
#endif
    PyObject *m = PyModule_Create(&moduledef);
    if (m && PyModule_AddIntConstant(m, "AT_FDCWD", AT_FDCWD) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
