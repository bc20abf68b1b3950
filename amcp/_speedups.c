/* amcp._speedups: HMAC-SHA256 with precomputed pad states, in C.
 *
 * The optional compiled twin of amcp.signing.PyHmacSha256 (same interface, same bytes;
 * tests/unit/test_signing.py checks both against RFC 4231 and the stdlib). Per frame the
 * Python version makes two hashlib copies and two digests, each an OpenSSL 3 EVP context
 * duplication and an object allocation (~0.75 us for a small frame); here a tag is two
 * struct copies and two SHA-256 finals (~0.2 us), which is a quarter of what signing
 * and verifying cost a message in CPython.
 *
 * It uses OpenSSL's SHA256_CTX because that context is a plain struct that can be copied
 * by assignment; OpenSSL 3 marks it deprecated (hence the API level below) but still
 * ships it, with the same SHA-NI/AVX code as EVP. If this file does not build (no
 * compiler, no OpenSSL headers, a future OpenSSL without the API), the install goes on
 * and amcp.signing falls back to hashlib.
 *
 * Further down, the replay window, AES-256-GCM (sealed bodies) through OpenSSL's EVP, and
 * the hot paths of Sealer.seal and Opener.open, each the twin of a Python reference.
 */
#define PY_SSIZE_T_CLEAN
#define OPENSSL_API_COMPAT 0x10101000L
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <openssl/evp.h>
#include <limits.h>
#include <math.h>

#define BLOCK 64
#define TAG 32

typedef struct {
    PyObject_HEAD
    SHA256_CTX inner; /* after key ^ ipad (and any bound prefix) */
    SHA256_CTX outer; /* after key ^ opad */
} HmacObject;

static PyTypeObject HmacType;

static int
hmac_init(HmacObject *self, PyObject *args, PyObject *kwds)
{
    Py_buffer key;
    unsigned char block[BLOCK] = {0}, pad[BLOCK];
    static char *kwlist[] = {"secret", NULL};

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*:HmacSha256", kwlist, &key))
        return -1;
    if (key.len > BLOCK)
        SHA256(key.buf, (size_t)key.len, block); /* RFC 2104: long keys are hashed first */
    else
        memcpy(block, key.buf, (size_t)key.len);
    PyBuffer_Release(&key);
    for (int i = 0; i < BLOCK; i++)
        pad[i] = block[i] ^ 0x36;
    SHA256_Init(&self->inner);
    SHA256_Update(&self->inner, pad, BLOCK);
    for (int i = 0; i < BLOCK; i++)
        pad[i] = block[i] ^ 0x5c;
    SHA256_Init(&self->outer);
    SHA256_Update(&self->outer, pad, BLOCK);
    OPENSSL_cleanse(block, BLOCK);
    OPENSSL_cleanse(pad, BLOCK);
    return 0;
}

static void
hmac_dealloc(HmacObject *self)
{
    OPENSSL_cleanse(&self->inner, sizeof self->inner); /* key-derived state */
    OPENSSL_cleanse(&self->outer, sizeof self->outer);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static void
compute_tag(const HmacObject *self, const void *data, size_t len, unsigned char out[TAG])
{
    SHA256_CTX ctx = self->inner;
    unsigned char inner_hash[TAG];

    SHA256_Update(&ctx, data, len);
    SHA256_Final(inner_hash, &ctx);
    ctx = self->outer;
    SHA256_Update(&ctx, inner_hash, TAG);
    SHA256_Final(out, &ctx);
}

PyDoc_STRVAR(bind_doc, "bind(prefix) -> HmacSha256 whose input starts with prefix.");

static PyObject *
hmac_bind(HmacObject *self, PyObject *arg)
{
    Py_buffer prefix;
    HmacObject *bound;

    if (PyObject_GetBuffer(arg, &prefix, PyBUF_SIMPLE) < 0)
        return NULL;
    bound = PyObject_New(HmacObject, Py_TYPE(self));
    if (bound != NULL) {
        bound->inner = self->inner;
        bound->outer = self->outer;
        SHA256_Update(&bound->inner, prefix.buf, (size_t)prefix.len);
    }
    PyBuffer_Release(&prefix);
    return (PyObject *)bound;
}

PyDoc_STRVAR(sign_doc, "sign(data) -> the 32-byte tag of data.");

static PyObject *
hmac_sign(HmacObject *self, PyObject *arg)
{
    Py_buffer data;
    unsigned char tag[TAG];

    if (PyObject_GetBuffer(arg, &data, PyBUF_SIMPLE) < 0)
        return NULL;
    compute_tag(self, data.buf, (size_t)data.len, tag);
    PyBuffer_Release(&data);
    return PyBytes_FromStringAndSize((const char *)tag, TAG);
}

PyDoc_STRVAR(append_tag_doc, "append_tag(data) -> data followed by its 32-byte tag.");

static PyObject *
hmac_append_tag(HmacObject *self, PyObject *arg)
{
    Py_buffer data;
    PyObject *out;

    if (PyObject_GetBuffer(arg, &data, PyBUF_SIMPLE) < 0)
        return NULL;
    out = PyBytes_FromStringAndSize(NULL, data.len + TAG); /* one allocation, no concat */
    if (out != NULL) {
        char *buf = PyBytes_AS_STRING(out);
        memcpy(buf, data.buf, (size_t)data.len);
        compute_tag(self, data.buf, (size_t)data.len, (unsigned char *)buf + data.len);
    }
    PyBuffer_Release(&data);
    return out;
}

PyDoc_STRVAR(verify_doc, "verify(data, tag) -> True if tag is data's tag (constant time).");

static PyObject *
hmac_verify(HmacObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data, tag;
    unsigned char expected[TAG];
    int ok;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "verify(data, tag) takes 2 arguments");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[1], &tag, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    compute_tag(self, data.buf, (size_t)data.len, expected);
    ok = tag.len == TAG && CRYPTO_memcmp(expected, tag.buf, TAG) == 0;
    PyBuffer_Release(&data);
    PyBuffer_Release(&tag);
    return PyBool_FromLong(ok);
}

static PyMethodDef hmac_methods[] = {
    {"bind", (PyCFunction)hmac_bind, METH_O, bind_doc},
    {"sign", (PyCFunction)hmac_sign, METH_O, sign_doc},
    {"append_tag", (PyCFunction)hmac_append_tag, METH_O, append_tag_doc},
    {"verify", (PyCFunction)(void (*)(void))hmac_verify, METH_FASTCALL, verify_doc},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject HmacType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "amcp._speedups.HmacSha256",
    .tp_doc = PyDoc_STR("HmacSha256(secret): HMAC-SHA256 with the key's pad states kept."),
    .tp_basicsize = sizeof(HmacObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)hmac_init,
    .tp_dealloc = (destructor)hmac_dealloc,
    .tp_methods = hmac_methods,
};


/* ---------------------------------------------------------------------------------------
 * AesGcm: AES-256-GCM with the key schedule kept (amcp.sealing.PyAesGcm's compiled twin:
 * same interface, same bytes; cryptography's AESGCM sets a cipher context up per call,
 * which is most of its ~1.2 us for 1 KiB). One context per direction, re-armed with each
 * nonce; the associated data may come in parts (GCM hashes them as one string), so the
 * compiled seal and open feed the subject prefix and the envelope head without joining.
 */

#define GCM_TAG 16
#define GCM_NONCE 12
#define FLAG_SEALED 4 /* envelope.FLAG_SEALED */

typedef struct {
    PyObject_HEAD
    EVP_CIPHER_CTX *enc, *dec;
} AesGcmObject;

static PyTypeObject AesGcmType;

static int
aesgcm_init(AesGcmObject *self, PyObject *args, PyObject *kwds)
{
    Py_buffer key;
    static char *kwlist[] = {"key", NULL};
    int ok;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*:AesGcm", kwlist, &key))
        return -1;
    if (key.len != 32) {
        PyBuffer_Release(&key);
        PyErr_SetString(PyExc_ValueError, "AesGcm takes a 32-byte key");
        return -1;
    }
    if (self->enc == NULL)
        self->enc = EVP_CIPHER_CTX_new();
    if (self->dec == NULL)
        self->dec = EVP_CIPHER_CTX_new();
    ok = self->enc != NULL && self->dec != NULL &&
         EVP_EncryptInit_ex(self->enc, EVP_aes_256_gcm(), NULL, key.buf, NULL) == 1 &&
         EVP_DecryptInit_ex(self->dec, EVP_aes_256_gcm(), NULL, key.buf, NULL) == 1;
    PyBuffer_Release(&key);
    if (!ok) {
        PyErr_SetString(PyExc_RuntimeError, "OpenSSL could not set up AES-256-GCM");
        return -1;
    }
    return 0;
}

static void
aesgcm_dealloc(AesGcmObject *self)
{
    EVP_CIPHER_CTX_free(self->enc); /* cleanses the key schedule */
    EVP_CIPHER_CTX_free(self->dec);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

typedef struct {
    const void *buf;
    size_t len;
} Part;

typedef int (*gcm_update)(EVP_CIPHER_CTX *, unsigned char *, int *, const unsigned char *, int);

/* Feed the associated data: joined in one update when it fits on the stack (an EVP call
 * costs about as much as hashing a few blocks), else part by part. 1, or 0. */
static int
gcm_aad(EVP_CIPHER_CTX *ctx, gcm_update update, const Part *aad, int naad)
{
    unsigned char joined[512];
    size_t len = 0;
    int n;

    for (int i = 0; i < naad; i++)
        len += aad[i].len;
    if (len <= sizeof joined) {
        len = 0;
        for (int i = 0; i < naad; i++) {
            memcpy(joined + len, aad[i].buf, aad[i].len);
            len += aad[i].len;
        }
        return update(ctx, NULL, &n, joined, (int)len) == 1;
    }
    for (int i = 0; i < naad; i++)
        if (aad[i].len > INT_MAX || update(ctx, NULL, &n, aad[i].buf, (int)aad[i].len) != 1)
            return 0;
    return 1;
}

/* ciphertext || tag of `plain` into out (len + GCM_TAG bytes): 1, or 0 (OpenSSL failed). */
static int
gcm_seal(AesGcmObject *self, const unsigned char nonce[GCM_NONCE], const Part *aad,
         int naad, const void *plain, size_t len, unsigned char *out)
{
    EVP_CIPHER_CTX *ctx = self->enc;
    int n, m;

    if (ctx == NULL || len > INT_MAX - 32 ||
        EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1 ||
        !gcm_aad(ctx, EVP_EncryptUpdate, aad, naad))
        return 0;
    if (EVP_EncryptUpdate(ctx, out, &n, plain, (int)len) != 1 ||
        EVP_EncryptFinal_ex(ctx, out + n, &m) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, GCM_TAG, out + len) != 1)
        return 0;
    return 1;
}

/* The plaintext of sealed (len >= GCM_TAG: ciphertext || tag) into out (len - GCM_TAG
 * bytes): 1, or 0 if it does not open (tag, nonce, key or associated data differ). */
static int
gcm_open(AesGcmObject *self, const unsigned char nonce[GCM_NONCE], const Part *aad, int naad,
         const unsigned char *sealed, size_t len, unsigned char *out)
{
    EVP_CIPHER_CTX *ctx = self->dec;
    size_t clen = len - GCM_TAG;
    int n, m;

    if (ctx == NULL || len < GCM_TAG || len > INT_MAX - 32 ||
        EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1 ||
        !gcm_aad(ctx, EVP_DecryptUpdate, aad, naad))
        return 0;
    if (EVP_DecryptUpdate(ctx, out, &n, sealed, (int)clen) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, GCM_TAG, (void *)(sealed + clen)) != 1)
        return 0;
    return EVP_DecryptFinal_ex(ctx, out + n, &m) == 1;
}

/* Parse (nonce, data, aad) for encrypt and decrypt: 1, or 0 with an exception. */
static int
aesgcm_args(PyObject *const *args, Py_ssize_t nargs, const char *name, Py_buffer views[3])
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "%s(nonce, data, associated_data) takes 3 arguments",
                     name);
        return 0;
    }
    for (int i = 0; i < 3; i++)
        if (PyObject_GetBuffer(args[i], &views[i], PyBUF_SIMPLE) < 0) {
            while (--i >= 0)
                PyBuffer_Release(&views[i]);
            return 0;
        }
    if (views[0].len != GCM_NONCE) {
        for (int i = 0; i < 3; i++)
            PyBuffer_Release(&views[i]);
        PyErr_SetString(PyExc_ValueError, "the nonce is 12 bytes");
        return 0;
    }
    return 1;
}

PyDoc_STRVAR(aesgcm_encrypt_doc,
             "encrypt(nonce, data, associated_data) -> ciphertext || 16-byte tag.");

static PyObject *
aesgcm_encrypt(AesGcmObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer v[3];
    PyObject *out;

    if (!aesgcm_args(args, nargs, "encrypt", v))
        return NULL;
    Part aad = {v[2].buf, (size_t)v[2].len};
    out = PyBytes_FromStringAndSize(NULL, v[1].len + GCM_TAG);
    if (out != NULL && !gcm_seal(self, v[0].buf, &aad, 1, v[1].buf, (size_t)v[1].len,
                                 (unsigned char *)PyBytes_AS_STRING(out))) {
        Py_CLEAR(out);
        PyErr_SetString(PyExc_ValueError, "AES-GCM refused the input (too long?)");
    }
    for (int i = 0; i < 3; i++)
        PyBuffer_Release(&v[i]);
    return out;
}

PyDoc_STRVAR(aesgcm_decrypt_doc,
             "decrypt(nonce, data, associated_data) -> the plaintext, or None if data does "
             "not open under this key, nonce and associated data.");

static PyObject *
aesgcm_decrypt(AesGcmObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer v[3];
    PyObject *out = NULL;

    if (!aesgcm_args(args, nargs, "decrypt", v))
        return NULL;
    if (v[1].len < GCM_TAG)
        out = Py_NewRef(Py_None);
    else {
        Part aad = {v[2].buf, (size_t)v[2].len};
        out = PyBytes_FromStringAndSize(NULL, v[1].len - GCM_TAG);
        if (out != NULL && !gcm_open(self, v[0].buf, &aad, 1, v[1].buf, (size_t)v[1].len,
                                     (unsigned char *)PyBytes_AS_STRING(out)))
            Py_SETREF(out, Py_NewRef(Py_None));
    }
    for (int i = 0; i < 3; i++)
        PyBuffer_Release(&v[i]);
    return out;
}

static PyMethodDef aesgcm_methods[] = {
    {"encrypt", (PyCFunction)(void (*)(void))aesgcm_encrypt, METH_FASTCALL, aesgcm_encrypt_doc},
    {"decrypt", (PyCFunction)(void (*)(void))aesgcm_decrypt, METH_FASTCALL, aesgcm_decrypt_doc},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject AesGcmType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "amcp._speedups.AesGcm",
    .tp_doc = PyDoc_STR("AesGcm(key): AES-256-GCM with 12-byte nonces and 16-byte tags, the "
                        "key schedule kept."),
    .tp_basicsize = sizeof(AesGcmObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)aesgcm_init,
    .tp_dealloc = (destructor)aesgcm_dealloc,
    .tp_methods = aesgcm_methods,
};


/* ---------------------------------------------------------------------------------------
 * ReplayGuard: the compiled twin of amcp.replay.PyReplayGuard (same methods, same answers,
 * same table order and eviction floor; tests/unit/test_replay_differential.py compares them).
 *
 * A sender's window is a ring of 64-bit words addressed by seq (RFC 6479): bit
 * (seq mod 64*nwords) says whether seq was seen. nwords is a power of two with at least
 * one word more than the window needs, so moving the top only clears whole words and never
 * a bit still inside the window. The table is a dict sender -> window plus, per segment of
 * the segmented LRU (probationary, protected), a doubly linked list in recency order (head:
 * least recent), as the two OrderedDicts of the Python version.
 * Senders must be exact str (the wire only carries str; no Python code runs in a lookup).
 */

#define MAX_WINDOW (1 << 20)

typedef struct WindowObject {
    PyObject_VAR_HEAD
    PyObject *sender; /* the dict key, owned */
    struct WindowObject *prev, *next; /* recency list; borrowed (the dict owns windows) */
    int seg; /* the segment whose list it is in: SEG_PROBATION or SEG_PROTECTED */
    uint64_t epoch, top, last_ts;
    uint64_t base; /* the first seq this window saw: older ones face the floor */
    uint64_t bits[1]; /* nwords (ob_size) words */
} WindowObject;

static void
window_dealloc(WindowObject *self)
{
    Py_XDECREF(self->sender);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject WindowType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "amcp._speedups._Window",
    .tp_basicsize = offsetof(WindowObject, bits),
    .tp_itemsize = sizeof(uint64_t),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)window_dealloc,
};

enum { SEG_PROBATION, SEG_PROTECTED };

typedef struct {
    PyObject_HEAD
    PyObject *senders; /* dict: str -> WindowObject */
    WindowObject *head[2], *tail[2]; /* per segment: least and most recently committed */
    Py_ssize_t nprotected, protected_max; /* max_senders * 4 / 5 */
    uint64_t window, skew_ms, evicted_floor_ms;
    Py_ssize_t max_senders, nwords;
} GuardObject;

static PyTypeObject GuardType;
static PyObject *str_stale, *str_replay; /* Reason.STALE, Reason.REPLAY */

static void
window_reset(WindowObject *w, uint64_t epoch, uint64_t seq, uint64_t ts_ms)
{
    memset(w->bits, 0, sizeof(uint64_t) * (size_t)Py_SIZE(w));
    w->epoch = epoch;
    w->top = w->base = seq;
    w->last_ts = ts_ms;
    w->bits[(seq >> 6) & (uint64_t)(Py_SIZE(w) - 1)] |= (uint64_t)1 << (seq & 63);
}

static inline int
window_seen(const WindowObject *w, uint64_t seq)
{
    return (int)((w->bits[(seq >> 6) & (uint64_t)(Py_SIZE(w) - 1)] >> (seq & 63)) & 1);
}

/* Record seq in w (its epoch). Below the window it is a no-op, as the Python version's
 * bit past the mask is never read. */
static void
window_record(WindowObject *w, uint64_t window, uint64_t seq)
{
    uint64_t mask = (uint64_t)(Py_SIZE(w) - 1);

    if (seq > w->top) {
        uint64_t first = (w->top >> 6) + 1, last = seq >> 6;
        if (seq - w->top >= window || last - (w->top >> 6) >= (uint64_t)Py_SIZE(w))
            memset(w->bits, 0, sizeof(uint64_t) * (size_t)Py_SIZE(w));
        else
            for (uint64_t k = first; k <= last; k++)
                w->bits[k & mask] = 0;
        w->top = seq;
    }
    else if (w->top - seq >= window)
        return;
    w->bits[(seq >> 6) & mask] |= (uint64_t)1 << (seq & 63);
}

static void
lru_unlink(GuardObject *g, WindowObject *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        g->head[w->seg] = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        g->tail[w->seg] = w->prev;
    w->prev = w->next = NULL;
    g->nprotected -= w->seg == SEG_PROTECTED;
}

/* Put w (unlinked) at the most recent end of segment seg. */
static void
lru_append(GuardObject *g, WindowObject *w, int seg)
{
    w->seg = seg;
    w->prev = g->tail[seg];
    w->next = NULL;
    if (g->tail[seg])
        g->tail[seg]->next = w;
    else
        g->head[seg] = w;
    g->tail[seg] = w;
    g->nprotected += seg == SEG_PROTECTED;
}

/* A later commit of w: to protected's most recent end; protected's least recent entry
 * goes over its limit to probation's most recent end (demoted, not evicted). */
static void
lru_touch(GuardObject *g, WindowObject *w)
{
    if (w == g->tail[SEG_PROTECTED])
        return; /* already there: one busy sender's frames in a row */
    lru_unlink(g, w);
    lru_append(g, w, SEG_PROTECTED);
    if (g->nprotected > g->protected_max) {
        WindowObject *old = g->head[SEG_PROTECTED];
        lru_unlink(g, old);
        lru_append(g, old, SEG_PROBATION);
    }
}

/* The window of sender, borrowed, or NULL (with no error set: sender is an exact str). */
static inline WindowObject *
guard_get(GuardObject *g, PyObject *sender)
{
    return (WindowObject *)PyDict_GetItemWithError(g->senders, sender);
}

/* |now - ts| > skew, in exact integer arithmetic. */
static int
outside_skew(uint64_t ts, int64_t now, uint64_t skew)
{
    if (now >= 0) {
        uint64_t n = (uint64_t)now;
        return ts >= n ? ts - n > skew : n - ts > skew;
    }
    /* now < 0 <= ts: ts - now = ts + m > skew */
    uint64_t m = (uint64_t)(-(now + 1)) + 1;
    return skew < m || ts > skew - m;
}

/* The window part of the pre-MAC test (no skew): NULL if the frame may be verified, else
 * Reason.STALE or Reason.REPLAY (borrowed). Never fails: sender is an exact str. */
static PyObject *
guard_check_window(GuardObject *g, PyObject *sender, uint64_t epoch, uint64_t seq,
                   uint64_t ts)
{
    WindowObject *w = guard_get(g, sender);

    if (w == NULL)
        return ts <= g->evicted_floor_ms ? str_stale : NULL;
    if (epoch != w->epoch)
        return epoch < w->epoch ? str_stale : NULL;
    if (seq > w->top)
        return NULL;
    if (w->top - seq >= g->window || window_seen(w, seq))
        return str_replay;
    if (seq < w->base && ts <= g->evicted_floor_ms)
        return str_stale; /* older than the window, and than what the floor lets in */
    return NULL;
}

/* Pre-MAC test: NULL if the frame may be verified, else the reason (borrowed). */
static PyObject *
guard_check_c(GuardObject *g, PyObject *sender, uint64_t epoch, uint64_t seq, uint64_t ts,
              int64_t now)
{
    if (outside_skew(ts, now, g->skew_ms))
        return str_stale;
    return guard_check_window(g, sender, epoch, seq, ts);
}

/* Record a verified frame; -1 with an exception (memory) else 0. A first frame puts its
 * sender on probation, whose least recent entry is evicted when the table is over
 * max_senders (never empty then: protected is smaller than the table). An eviction raises
 * the floor to the evicted sender's newest timestamp, but never past now: a flood of
 * future-stamped senders must not lock out current ones. */
static int
guard_commit_c(GuardObject *g, PyObject *sender, uint64_t epoch, uint64_t seq, uint64_t ts,
               int64_t now)
{
    WindowObject *w = guard_get(g, sender);

    if (w != NULL) {
        if (w->epoch == epoch) {
            window_record(w, g->window, seq);
            if (ts > w->last_ts)
                w->last_ts = ts;
        }
        else
            window_reset(w, epoch, seq, ts); /* a new epoch takes the same place */
        lru_touch(g, w);
        return 0;
    }
    if (PyErr_Occurred())
        return -1;
    w = PyObject_NewVar(WindowObject, &WindowType, g->nwords);
    if (w == NULL)
        return -1;
    Py_INCREF(sender);
    w->sender = sender;
    w->prev = w->next = NULL;
    window_reset(w, epoch, seq, ts);
    if (PyDict_SetItem(g->senders, sender, (PyObject *)w) < 0) {
        Py_DECREF(w);
        return -1;
    }
    Py_DECREF(w); /* the dict holds it */
    lru_append(g, w, SEG_PROBATION);
    if (PyDict_GET_SIZE(g->senders) > g->max_senders) {
        WindowObject *old = g->head[SEG_PROBATION];
        PyObject *key = old->sender;
        uint64_t floor = now < 0 ? 0 : old->last_ts < (uint64_t)now ? old->last_ts
                                                                      : (uint64_t)now;
        if (floor > g->evicted_floor_ms)
            g->evicted_floor_ms = floor;
        lru_unlink(g, old);
        Py_INCREF(key);
        int rc = PyDict_DelItem(g->senders, key); /* frees old */
        Py_DECREF(key);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int
guard_init(GuardObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"window", "skew_ms", "max_senders", "floor_ms", NULL};
    PyObject *window = NULL, *skew = NULL, *max_senders = NULL, *floor = NULL;
    long long win_v = 1024, skew_v = 30000, max_v = 4096;
    unsigned long long floor_v = 0;
    int overflow = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OOOO:ReplayGuard", kwlist, &window, &skew,
                                     &max_senders, &floor))
        return -1;
    if (floor != NULL) {
        if (!PyLong_Check(floor)) {
            PyErr_SetString(PyExc_TypeError, "floor_ms must be an int");
            return -1;
        }
        if (_PyLong_Sign(floor) < 0)
            overflow = 1;
        else if ((floor_v = PyLong_AsUnsignedLongLong(floor)) == (unsigned long long)-1 &&
                 PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_OverflowError))
                return -1;
            PyErr_Clear();
            overflow = 1;
        }
    }
    if (window && (win_v = PyLong_AsLongLongAndOverflow(window, &overflow)) == -1 &&
        PyErr_Occurred())
        return -1;
    if (!overflow && skew && (skew_v = PyLong_AsLongLongAndOverflow(skew, &overflow)) == -1 &&
        PyErr_Occurred())
        return -1;
    if (!overflow && max_senders &&
        (max_v = PyLong_AsLongLongAndOverflow(max_senders, &overflow)) == -1 && PyErr_Occurred())
        return -1;
    if (overflow || win_v < 32 || win_v > MAX_WINDOW || max_v < 1 || max_v > PY_SSIZE_T_MAX ||
        skew_v < 0) {
        PyErr_SetString(PyExc_ValueError,
                        "32 <= window <= 1048576, max_senders >= 1, 0 <= skew_ms < 2**63 and "
                        "0 <= floor_ms < 2**64 are required");
        return -1;
    }
    if (self->senders != NULL) {
        PyErr_SetString(PyExc_TypeError, "ReplayGuard is already initialised");
        return -1;
    }
    self->senders = PyDict_New();
    if (self->senders == NULL)
        return -1;
    self->head[0] = self->head[1] = self->tail[0] = self->tail[1] = NULL;
    self->nprotected = 0;
    self->protected_max = (Py_ssize_t)(max_v / 5 * 4 + max_v % 5 * 4 / 5);
    self->window = (uint64_t)win_v;
    self->skew_ms = (uint64_t)skew_v;
    self->max_senders = (Py_ssize_t)max_v;
    self->evicted_floor_ms = (uint64_t)floor_v;
    self->nwords = 1;
    while ((uint64_t)self->nwords * 64 < self->window + 64)
        self->nwords *= 2;
    return 0;
}

static void
guard_dealloc(GuardObject *self)
{
    PyObject_GC_UnTrack(self);
    self->head[0] = self->head[1] = self->tail[0] = self->tail[1] = NULL;
    Py_CLEAR(self->senders);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
guard_traverse(GuardObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->senders);
    return 0;
}

static int
guard_clear(GuardObject *self)
{
    self->head[0] = self->head[1] = self->tail[0] = self->tail[1] = NULL;
    Py_CLEAR(self->senders);
    return 0;
}

static int
guard_ready(GuardObject *self)
{
    if (self->senders == NULL) {
        PyErr_SetString(PyExc_ValueError, "ReplayGuard is not initialised");
        return 0;
    }
    return 1;
}

static int
as_u64(PyObject *obj, uint64_t *out)
{
    unsigned long long v;
    if (!PyLong_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "an int is required, not %.100s", Py_TYPE(obj)->tp_name);
        return 0;
    }
    v = PyLong_AsUnsignedLongLong(obj);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return 0;
    *out = (uint64_t)v;
    return 1;
}

static int
as_sender(PyObject *obj)
{
    if (!PyUnicode_CheckExact(obj)) {
        PyErr_Format(PyExc_TypeError, "sender must be a str, not %.100s", Py_TYPE(obj)->tp_name);
        return 0;
    }
    return 1;
}

PyDoc_STRVAR(guard_check_doc,
             "check(sender, epoch, seq, ts_ms, now_ms) -> None if the frame may be verified, "
             "else a rejection reason.");

static PyObject *
guard_check(GuardObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t epoch, seq, ts;
    long long now;
    PyObject *reason;

    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "check(sender, epoch, seq, ts_ms, now_ms)");
        return NULL;
    }
    if (!guard_ready(self) || !as_sender(args[0]) || !as_u64(args[1], &epoch) ||
        !as_u64(args[2], &seq) || !as_u64(args[3], &ts))
        return NULL;
    now = PyLong_AsLongLong(args[4]);
    if (now == -1 && PyErr_Occurred())
        return NULL;
    reason = guard_check_c(self, args[0], epoch, seq, ts, (int64_t)now);
    if (reason == NULL) {
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;
    }
    return Py_NewRef(reason);
}

/* now_ms as an int64, as check() reads it: 1, or 0 with an exception. */
static int
as_now(PyObject *obj, int64_t *out)
{
    long long now = PyLong_AsLongLong(obj);
    if (now == -1 && PyErr_Occurred())
        return 0;
    *out = (int64_t)now;
    return 1;
}

PyDoc_STRVAR(guard_commit_doc,
             "commit(sender, epoch, seq, ts_ms, now_ms): record a verified frame (after the "
             "MAC); an eviction's floor never passes now_ms.");

static PyObject *
guard_commit(GuardObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t epoch, seq, ts;
    int64_t now;

    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "commit(sender, epoch, seq, ts_ms, now_ms)");
        return NULL;
    }
    if (!guard_ready(self) || !as_sender(args[0]) || !as_u64(args[1], &epoch) ||
        !as_u64(args[2], &seq) || !as_u64(args[3], &ts) || !as_now(args[4], &now))
        return NULL;
    if (guard_commit_c(self, args[0], epoch, seq, ts, now) < 0)
        return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(guard_admit_doc,
             "admit(sender, epoch, seqs, ts_ms, now_ms) -> [bool]: check and record a batch's "
             "inner seqs in order (after the batch frame itself was committed).");

static PyObject *
guard_admit(GuardObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t epoch, ts, seq;
    int64_t now;
    PyObject *seqs, *out;
    WindowObject *w;
    Py_ssize_t n;
    int general;

    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "admit(sender, epoch, seqs, ts_ms, now_ms)");
        return NULL;
    }
    if (!guard_ready(self) || !as_sender(args[0]) || !as_u64(args[1], &epoch) ||
        !as_u64(args[3], &ts) || !as_now(args[4], &now))
        return NULL;
    seqs = PySequence_Fast(args[2], "seqs must be a sequence");
    if (seqs == NULL)
        return NULL;
    n = PySequence_Fast_GET_SIZE(seqs);
    out = PyList_New(n);
    if (out == NULL)
        goto fail;
    w = guard_get(self, args[0]);
    general = w == NULL || w->epoch != epoch; /* evicted since the commit, or a new epoch */
    for (Py_ssize_t i = 0; i < n; i++) {
        int ok;
        if (!as_u64(PySequence_Fast_GET_ITEM(seqs, i), &seq))
            goto fail;
        if (general) { /* check (now = ts: no skew) and commit, one by one */
            ok = guard_check_window(self, args[0], epoch, seq, ts) == NULL;
            if (ok && guard_commit_c(self, args[0], epoch, seq, ts, now) < 0)
                goto fail;
        }
        else {
            ok = seq > w->top || (w->top - seq < self->window && !window_seen(w, seq) &&
                                  !(seq < w->base && ts <= self->evicted_floor_ms));
            if (ok)
                window_record(w, self->window, seq);
        }
        PyList_SET_ITEM(out, i, Py_NewRef(ok ? Py_True : Py_False));
    }
    if (!general && ts > w->last_ts)
        w->last_ts = ts;
    Py_DECREF(seqs);
    return out;
fail:
    Py_DECREF(seqs);
    Py_XDECREF(out);
    return NULL;
}

PyDoc_STRVAR(guard_windows_doc,
             "windows() -> [(sender, epoch, top, bitmap, last_ts)]: the probationary segment, "
             "then the protected one, each least recent first; bit i of bitmap set means seq "
             "top - i was seen (i < window).");

static PyObject *
guard_windows(GuardObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *out;
    unsigned char *bytes;
    size_t nbytes;

    if (!guard_ready(self))
        return NULL;
    out = PyList_New(0);
    nbytes = (size_t)(self->window + 7) / 8;
    bytes = PyMem_Malloc(nbytes);
    if (out == NULL || bytes == NULL) {
        Py_XDECREF(out);
        PyMem_Free(bytes);
        return PyErr_NoMemory();
    }
    for (int seg = SEG_PROBATION; seg <= SEG_PROTECTED; seg++) {
        for (WindowObject *w = self->head[seg]; w != NULL; w = w->next) {
            PyObject *bitmap, *item;
            memset(bytes, 0, nbytes);
            for (uint64_t i = 0; i < self->window && i <= w->top; i++)
                if (window_seen(w, w->top - i))
                    bytes[i / 8] |= (unsigned char)(1u << (i % 8));
            bitmap = _PyLong_FromByteArray(bytes, nbytes, 1, 0);
            if (bitmap == NULL)
                goto fail;
            item = Py_BuildValue("(OKKNK)", w->sender, (unsigned long long)w->epoch,
                                 (unsigned long long)w->top, bitmap,
                                 (unsigned long long)w->last_ts);
            if (item == NULL || PyList_Append(out, item) < 0) {
                Py_XDECREF(item);
                goto fail;
            }
            Py_DECREF(item);
        }
    }
    PyMem_Free(bytes);
    return out;
fail:
    PyMem_Free(bytes);
    Py_DECREF(out);
    return NULL;
}

static Py_ssize_t
guard_len(GuardObject *self)
{
    return self->senders == NULL ? 0 : PyDict_GET_SIZE(self->senders);
}

static PyObject *
guard_get_window(GuardObject *self, void *closure)
{
    return PyLong_FromUnsignedLongLong(self->window);
}

static PyObject *
guard_get_skew(GuardObject *self, void *closure)
{
    return PyLong_FromUnsignedLongLong(self->skew_ms);
}

static PyObject *
guard_get_max(GuardObject *self, void *closure)
{
    return PyLong_FromSsize_t(self->max_senders);
}

static PyObject *
guard_get_floor(GuardObject *self, void *closure)
{
    return PyLong_FromUnsignedLongLong(self->evicted_floor_ms);
}

static PyGetSetDef guard_getset[] = {
    {"window", (getter)guard_get_window, NULL, "Seqs a window spans below its top.", NULL},
    {"skew_ms", (getter)guard_get_skew, NULL, "Allowed |now - ts_ms|.", NULL},
    {"max_senders", (getter)guard_get_max, NULL, "Senders tracked at most (segmented LRU).", NULL},
    {"evicted_floor_ms", (getter)guard_get_floor, NULL,
     "Untracked senders need a newer timestamp: the start floor, raised by evictions.",
     NULL},
    {NULL},
};

static PyMethodDef guard_methods[] = {
    {"check", (PyCFunction)(void (*)(void))guard_check, METH_FASTCALL, guard_check_doc},
    {"commit", (PyCFunction)(void (*)(void))guard_commit, METH_FASTCALL, guard_commit_doc},
    {"admit", (PyCFunction)(void (*)(void))guard_admit, METH_FASTCALL, guard_admit_doc},
    {"windows", (PyCFunction)guard_windows, METH_NOARGS, guard_windows_doc},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods guard_as_sequence = {
    .sq_length = (lenfunc)guard_len,
};

static PyTypeObject GuardType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "amcp._speedups.ReplayGuard",
    .tp_doc = PyDoc_STR("ReplayGuard(window=1024, skew_ms=30000, max_senders=4096, "
                        "floor_ms=0): "
                        "per-sender replay windows (amcp.replay.PyReplayGuard, in C)."),
    .tp_basicsize = sizeof(GuardObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)guard_init,
    .tp_dealloc = (destructor)guard_dealloc,
    .tp_traverse = (traverseproc)guard_traverse,
    .tp_clear = (inquiry)guard_clear,
    .tp_methods = guard_methods,
    .tp_getset = guard_getset,
    .tp_as_sequence = &guard_as_sequence,
};

/* ---------------------------------------------------------------------------------------
 * OpenerCore: the base of amcp.protocol.Opener when compiled. Its `open` is the hot path
 * of Opener._open for the common frame (no flags, or only the sealed flag with the AES key
 * of its sender epoch already derived; the compiled ReplayGuard and HMAC, a subject already
 * seen): decode with the envelope decoder, the same shape checks as unpack_envelope, key
 * lookup, skew and replay check, MAC over the frame in place, decrypt a sealed body into
 * one new buffer, commit, and a Message. It has no side effect before the commit, so for anything else (every
 * rejection included) it hands the frame to Opener._open, the Python reference, which
 * then decides, raises and counts exactly as it always does.
 */

/* The cipher a compiled seal or open used last and what it was derived for, so that a
 * busy sender's frames in a row skip the tuple and dict lookup in SealKeys.ciphers. It
 * holds its objects (a cleared cache cannot free them under it), and a cipher is a function
 * of (key, sender, epoch), so what it holds stays right. */
typedef struct {
    PyObject *mac, *sender, *cipher;
    uint64_t epoch;
} CipherMemo;

#define MEMO_VISIT(m)                                                                        \
    Py_VISIT((m).mac);                                                                       \
    Py_VISIT((m).sender);                                                                    \
    Py_VISIT((m).cipher)
#define MEMO_CLEAR(m)                                                                        \
    Py_CLEAR((m).mac);                                                                       \
    Py_CLEAR((m).sender);                                                                    \
    Py_CLEAR((m).cipher)

typedef struct {
    PyObject_HEAD
    PyObject *keyring, *limits, *guard, *stats, *clock, *owner; /* Opener's attributes */
    PyObject *sealed_subjects, *seal_ciphers; /* SealPolicy.decided or None, SealKeys.ciphers */
    PyObject *cached_limits; /* the limits the three numbers below were read from */
    Py_ssize_t max_frame, max_header, max_depth, max_containers;
    CipherMemo memo;
} CoreObject;

/* Set once by bind(): the types and the decoders the fast path works with. */
static PyObject *decode_fn, *body_fn, *envelope_type, *message_type, *mackey_type;
static Py_ssize_t off_flags, off_sender, off_epoch, off_seq, off_ts, off_kid, off_headers,
    off_body, off_msg_subject, off_msg_env, off_msg_bus, off_per_subject;
static PyObject *str_bad_sig, *str_open_py, *str_verify_attr, *str_max_frame, *str_max_header,
    *str_max_depth, *str_max_containers;

#define SLOT(obj, off) (*(PyObject **)((char *)(obj) + (off)))

static int
core_traverse(CoreObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->keyring);
    Py_VISIT(self->limits);
    Py_VISIT(self->guard);
    Py_VISIT(self->stats);
    Py_VISIT(self->clock);
    Py_VISIT(self->owner);
    Py_VISIT(self->sealed_subjects);
    Py_VISIT(self->seal_ciphers);
    Py_VISIT(self->cached_limits);
    MEMO_VISIT(self->memo);
    return 0;
}

static int
core_clear(CoreObject *self)
{
    Py_CLEAR(self->keyring);
    Py_CLEAR(self->limits);
    Py_CLEAR(self->guard);
    Py_CLEAR(self->stats);
    Py_CLEAR(self->clock);
    Py_CLEAR(self->owner);
    Py_CLEAR(self->sealed_subjects);
    Py_CLEAR(self->seal_ciphers);
    Py_CLEAR(self->cached_limits);
    MEMO_CLEAR(self->memo);
    return 0;
}

static void
core_dealloc(CoreObject *self)
{
    PyObject_GC_UnTrack(self);
    core_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Read an int attribute as Py_ssize_t: 1, or 0 if it is not a small int (no error). */
static int
limit_value(PyObject *limits, PyObject *name, Py_ssize_t *out)
{
    PyObject *v = PyObject_GetAttr(limits, name);
    int ok = 0;

    if (v != NULL && PyLong_CheckExact(v)) {
        *out = PyLong_AsSsize_t(v);
        ok = !(*out == -1 && PyErr_Occurred());
    }
    Py_XDECREF(v);
    if (!ok && PyErr_Occurred() && PyErr_ExceptionMatches(PyExc_Exception))
        PyErr_Clear();
    return ok;
}

/* 1 if self->limits' numbers are cached, 0 to take the reference path, -1 on error. */
static int
core_limits(CoreObject *self)
{
    Py_ssize_t frame, header, depth, containers;

    if (self->limits == self->cached_limits)
        return 1;
    if (!limit_value(self->limits, str_max_frame, &frame) ||
        !limit_value(self->limits, str_max_header, &header) ||
        !limit_value(self->limits, str_max_depth, &depth) ||
        !limit_value(self->limits, str_max_containers, &containers))
        return PyErr_Occurred() ? -1 : 0;
    self->max_frame = frame;
    self->max_header = header;
    self->max_depth = depth;
    self->max_containers = containers;
    Py_XSETREF(self->cached_limits, Py_NewRef(self->limits));
    return 1;
}

/* now * 1000 truncated, as int(now * 1000): 1, or 0 if now is unusual. */
static int
now_millis(PyObject *now, int64_t *out)
{
    if (PyFloat_CheckExact(now)) {
        double ms = PyFloat_AS_DOUBLE(now) * 1000.0;
        if (!(ms > -9.0e18 && ms < 9.0e18)) /* NaN, inf, or past int64 */
            return 0;
        *out = (int64_t)ms; /* truncates toward zero, as int() */
        return 1;
    }
    if (PyLong_CheckExact(now)) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(now, &overflow);
        if (overflow || (v == -1 && PyErr_Occurred()) || v > INT64_MAX / 1000 ||
            v < INT64_MIN / 1000) {
            PyErr_Clear();
            return 0;
        }
        *out = (int64_t)v * 1000;
        return 1;
    }
    return 0;
}

/* 1 if now >= expiry (a key no longer verifies), 0 if not, -1 to take the reference path. */
static int
expired(PyObject *now, PyObject *expiry)
{
    if (expiry == Py_None)
        return 0;
    if (PyFloat_CheckExact(now) && PyFloat_CheckExact(expiry))
        return PyFloat_AS_DOUBLE(now) >= PyFloat_AS_DOUBLE(expiry);
    if ((PyFloat_CheckExact(now) || PyLong_CheckExact(now)) &&
        (PyFloat_CheckExact(expiry) || PyLong_CheckExact(expiry))) {
        int r = PyObject_RichCompareBool(now, expiry, Py_GE);
        if (r < 0)
            PyErr_Clear();
        return r;
    }
    return -1;
}

static int
u64_field(PyObject *v, uint64_t *out)
{
    if (!PyLong_CheckExact(v))
        return 0;
    *out = (uint64_t)PyLong_AsUnsignedLongLong(v);
    if (*out == (uint64_t)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return 1;
}

/* Where the scalar at buf[pos] ends, or -1 (a container, an extension, a reserved byte,
 * too few bytes): envelope._scalar_end. */
static Py_ssize_t
scalar_end(const unsigned char *buf, Py_ssize_t n, Py_ssize_t pos)
{
    unsigned char b;
    Py_ssize_t width = 0, extra = 0;

    if (pos >= n)
        return -1;
    b = buf[pos];
    if (b < 0x80 || b >= 0xe0)
        return pos + 1;
    if (b >= 0xa0 && b < 0xc0)
        extra = b & 0x1f;
    else
        switch (b) {
        case 0xc0: case 0xc2: case 0xc3: break;
        case 0xcc: case 0xd0: extra = 1; break;
        case 0xcd: case 0xd1: extra = 2; break;
        case 0xca: case 0xce: case 0xd2: extra = 4; break;
        case 0xcb: case 0xcf: case 0xd3: extra = 8; break;
        case 0xc4: case 0xd9: width = 1; break;
        case 0xc5: case 0xda: width = 2; break;
        case 0xc6: case 0xdb: width = 4; break;
        default: return -1;
        }
    if (width) {
        if (pos + 1 + width > n)
            return -1;
        for (Py_ssize_t i = 0; i < width; i++)
            extra = (extra << 8) | buf[pos + 1 + i];
    }
    if (extra > n - pos - 1 - width)
        return -1;
    return pos + 1 + width + extra;
}

/* Where the body of the envelope bytes starts, skipping the ten fixed fields without
 * decoding them, and in *header_bytes the UTF-8 bytes of the header strings
 * (envelope.body_start); or -1: take the reference path, which says why. */
static Py_ssize_t
body_start_c(const unsigned char *buf, Py_ssize_t n, Py_ssize_t *header_bytes)
{
    Py_ssize_t pos, count;

    if (n >= 1 && buf[0] == 0x9b)
        pos = 1;
    else if (n >= 3 && buf[0] == 0xdc && buf[1] == 0 && buf[2] == 11)
        pos = 3;
    else if (n >= 5 && buf[0] == 0xdd && !buf[1] && !buf[2] && !buf[3] && buf[4] == 11)
        pos = 5;
    else
        return -1;
    for (int i = 0; i < 9; i++)
        if ((pos = scalar_end(buf, n, pos)) < 0)
            return -1;
    if (pos >= n)
        return -1;
    if (buf[pos] >= 0x80 && buf[pos] < 0x90) {
        count = buf[pos] & 0x0f;
        pos += 1;
    }
    else if (buf[pos] == 0xde && pos + 3 <= n) {
        count = (buf[pos + 1] << 8) | buf[pos + 2];
        pos += 3;
    }
    else
        return -1; /* map32 holds more than MAX_HEADERS anyway; or no map at all */
    if (count > 64) /* MAX_HEADERS */
        return -1;
    *header_bytes = 0;
    for (Py_ssize_t i = 0; i < 2 * count; i++) {
        Py_ssize_t start = pos;
        unsigned char b = buf[pos];
        if ((pos = scalar_end(buf, n, pos)) < 0)
            return -1;
        if (b >= 0xa0 && b < 0xc0)
            *header_bytes += pos - start - 1;
        else if (b >= 0xd9 && b <= 0xdb)
            *header_bytes += pos - start - (b == 0xd9 ? 2 : b == 0xda ? 3 : 5);
        else
            return -1; /* not a string: the reference refuses it */
    }
    return pos < n ? pos : -1;
}

/* envelope.py_scan_value in C: NULL if buf[at:n] is exactly one msgpack value with no
 * extension type or reserved byte, lists and maps nested at most max_depth deep and at
 * most max_containers of them; else the fault, a static string or one formatted into
 * `msg` (the same words as the reference). -1 in *err on no memory. */
static const char *
scan_value_c(const unsigned char *buf, Py_ssize_t n, Py_ssize_t at, Py_ssize_t max_depth,
             Py_ssize_t max_containers, char *msg, size_t msg_size, int *err)
{
    Py_ssize_t pos = at, containers = 0, depth = 1; /* depth: open levels, the top one too */
    uint64_t *pending;
    const char *fault = NULL;

    *err = 0;
    if (max_depth < 0)
        max_depth = 0;
    pending = PyMem_Malloc(sizeof(uint64_t) * (size_t)(max_depth + 2));
    if (pending == NULL) {
        *err = -1;
        return NULL;
    }
    pending[0] = 1;
    while (depth > 0) {
        unsigned char b;
        uint64_t count;
        if (pending[depth - 1] == 0) {
            depth--;
            continue;
        }
        pending[depth - 1]--;
        b = pos < n ? buf[pos] : 0xc1;
        if (b >= 0x80 && b < 0xa0) {
            count = (uint64_t)(b & 0x0f) * (b < 0x90 ? 2 : 1);
            pos += 1;
        }
        else if (b >= 0xdc && b <= 0xdf) {
            int width = (b == 0xdc || b == 0xde) ? 2 : 4;
            if (pos + 1 + width > n) {
                fault = "truncated body";
                break;
            }
            count = 0;
            for (int i = 0; i < width; i++)
                count = (count << 8) | buf[pos + 1 + i];
            if (b >= 0xde)
                count *= 2;
            pos += 1 + width;
        }
        else {
            pos = scalar_end(buf, n, pos);
            if (pos < 0) {
                fault = "body holds an extension type, a reserved byte or too few bytes";
                break;
            }
            continue;
        }
        if (++containers > max_containers) {
            PyOS_snprintf(msg, msg_size, "body holds more than %zd lists and maps",
                          max_containers);
            fault = msg;
            break;
        }
        if (depth > max_depth) {
            PyOS_snprintf(msg, msg_size, "body nested deeper than %zd", max_depth);
            fault = msg;
            break;
        }
        pending[depth++] = count;
    }
    PyMem_Free(pending);
    if (fault == NULL && pos != n)
        fault = "bytes after the body";
    return fault;
}

PyDoc_STRVAR(scan_value_doc,
             "scan_value(buf, at, max_depth, max_containers) -> None if buf[at:] is one "
             "msgpack value within the limits, else what is wrong (envelope.py_scan_value).");

static PyObject *
scan_value(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    Py_ssize_t at, depth, containers;
    char msg[96];
    const char *fault;
    int err;

    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "scan_value(buf, at, max_depth, max_containers)");
        return NULL;
    }
    if ((at = PyLong_AsSsize_t(args[1])) == -1 && PyErr_Occurred())
        return NULL;
    if ((depth = PyLong_AsSsize_t(args[2])) == -1 && PyErr_Occurred())
        return NULL;
    if ((containers = PyLong_AsSsize_t(args[3])) == -1 && PyErr_Occurred())
        return NULL;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (at < 0 || at > view.len) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "at must be within the buffer");
        return NULL;
    }
    fault = scan_value_c(view.buf, view.len, at, depth, containers, msg, sizeof msg, &err);
    PyBuffer_Release(&view);
    if (err)
        return PyErr_NoMemory();
    if (fault == NULL)
        Py_RETURN_NONE;
    return PyUnicode_FromString(fault);
}

/* Sealed bodies (amcp.sealing): whether `subject` is sealed by the policy whose decided
 * subjects are `decided` (SealPolicy.decided, or None: none is): 1 or 0, or -1 (no error
 * set) if it was not decided yet: the reference decides it. */
static int
subject_sealed(PyObject *decided, PyObject *subject)
{
    PyObject *hit;

    if (decided == NULL || decided == Py_None)
        return 0;
    if (!PyDict_CheckExact(decided))
        return -1;
    hit = PyDict_GetItemWithError(decided, subject);
    if (hit == Py_True || hit == Py_False)
        return hit == Py_True;
    PyErr_Clear();
    return -1;
}

/* The AesGcm derived for (MacKey, sender, epoch) in SealKeys.ciphers (a new reference), or
 * NULL with no error: not derived yet, the reference derives it. */
static AesGcmObject *
cipher_for(PyObject *ciphers, PyObject *mac, PyObject *sender, PyObject *epoch)
{
    PyObject *slot, *cipher = NULL;

    if (ciphers == NULL || !PyDict_CheckExact(ciphers))
        return NULL;
    slot = PyTuple_Pack(3, mac, sender, epoch);
    if (slot != NULL) {
        cipher = PyDict_GetItemWithError(ciphers, slot);
        Py_DECREF(slot);
    }
    if (cipher == NULL || !Py_IS_TYPE(cipher, &AesGcmType)) {
        PyErr_Clear();
        return NULL;
    }
    return (AesGcmObject *)Py_NewRef(cipher);
}

/* cipher_for through a core's memo of the last one. */
static AesGcmObject *
memo_cipher(CipherMemo *memo, PyObject *ciphers, PyObject *mac, PyObject *sender,
            PyObject *epoch_obj, uint64_t epoch)
{
    AesGcmObject *cipher;

    if (memo->cipher != NULL && memo->mac == mac && memo->epoch == epoch &&
        (memo->sender == sender || PyUnicode_Compare(memo->sender, sender) == 0))
        return (AesGcmObject *)Py_NewRef(memo->cipher);
    cipher = cipher_for(ciphers, mac, sender, epoch_obj);
    if (cipher != NULL) {
        Py_XSETREF(memo->mac, Py_NewRef(mac));
        Py_XSETREF(memo->sender, Py_NewRef(sender));
        Py_XSETREF(memo->cipher, Py_NewRef((PyObject *)cipher));
        memo->epoch = epoch;
    }
    return cipher;
}

/* The associated data of a sealed body: the MAC's subject prefix ("amcp1", u16be length,
 * the subject) and the envelope head, as three parts. 1, or 0 (no error set) for a subject
 * the reference must handle. */
static int
seal_aad(PyObject *subject, const void *head, Py_ssize_t head_len, unsigned char prefix[7],
         Part aad[3])
{
    Py_ssize_t n;
    const char *raw = PyUnicode_AsUTF8AndSize(subject, &n);

    if (raw == NULL || n > 0xFFFF) {
        PyErr_Clear();
        return 0;
    }
    memcpy(prefix, "amcp1", 5);
    prefix[5] = (unsigned char)(n >> 8);
    prefix[6] = (unsigned char)n;
    aad[0] = (Part){prefix, 7};
    aad[1] = (Part){raw, (size_t)n};
    aad[2] = (Part){head, (size_t)head_len};
    return 1;
}

/* u96be(seq): the nonce of the frame numbered seq. */
static void
seal_nonce(uint64_t seq, unsigned char nonce[GCM_NONCE])
{
    memset(nonce, 0, 4);
    for (int i = 0; i < 8; i++)
        nonce[4 + i] = (unsigned char)(seq >> (56 - 8 * i));
}

/* The fast path. Returns a new Message, NULL with an exception set (a failing clock, no
 * memory), or NULL with none set: take the reference path. `env_out` receives the decoded
 * envelope (owned) whenever one was decoded. */
static PyObject *
core_open_fast(CoreObject *self, PyObject *subject, PyObject *frame)
{
    PyObject *signed_part, *env = NULL, *now = NULL, *verify = NULL, *msg = NULL;
    PyObject *sender, *headers, *body, *entry, *mac, *per_subject, *state, *plain = NULL;
    const char *buf, *body_buf;
    Py_ssize_t size, at, header_bytes, body_len;
    uint64_t epoch, seq, ts;
    int64_t now_ms;
    unsigned char expected[TAG];
    int r, sealed;

    if (decode_fn == NULL || body_fn == NULL || !PyBytes_CheckExact(frame) || !PyUnicode_CheckExact(subject) ||
        self->guard == NULL || !Py_IS_TYPE(self->guard, &GuardType) ||
        ((GuardObject *)self->guard)->senders == NULL || self->keyring == NULL ||
        self->clock == NULL || self->limits == NULL)
        return NULL;
    r = core_limits(self);
    if (r <= 0)
        return NULL;
    size = PyBytes_GET_SIZE(frame);
    if (size > self->max_frame || size <= TAG)
        return NULL;
    buf = PyBytes_AS_STRING(frame);

    /* unpack_envelope: the fixed fields only (the body waits for the MAC), then the checks
     * the decoder cannot make */
    at = body_start_c((const unsigned char *)buf, size - TAG, &header_bytes);
    if (at < 0 || header_bytes > self->max_header)
        return NULL;
    signed_part = PyBytes_FromStringAndSize(NULL, at + 1);
    if (signed_part == NULL)
        return NULL;
    memcpy(PyBytes_AS_STRING(signed_part), buf, (size_t)at);
    PyBytes_AS_STRING(signed_part)[at] = (char)0xc0; /* nil in place of the body */
    env = PyObject_CallOneArg(decode_fn, signed_part);
    Py_DECREF(signed_part);
    if (env == NULL) {
        if (PyErr_ExceptionMatches(PyExc_Exception)) /* malformed: the reference says so */
            PyErr_Clear();
        return NULL;
    }
    if (!Py_IS_TYPE(env, (PyTypeObject *)envelope_type))
        goto slow;
    {
        PyObject *flags = SLOT(env, off_flags);
        long f = flags != NULL && PyLong_CheckExact(flags) ? PyLong_AsLong(flags) : -1;
        if (f != 0 && f != FLAG_SEALED) {
            PyErr_Clear();
            goto slow; /* compressed or batch: the reference decodes the body */
        }
        sealed = f == FLAG_SEALED;
    }
    if (!sealed && subject_sealed(self->sealed_subjects, subject) != 0)
        goto slow; /* plain on a sealed subject (bad_seal), or undecided: the reference */
    sender = SLOT(env, off_sender);
    headers = SLOT(env, off_headers);
    if (sender == NULL || !PyUnicode_CheckExact(sender) || headers == NULL ||
        !PyDict_CheckExact(headers) || SLOT(env, off_kid) == NULL ||
        !PyUnicode_CheckExact(SLOT(env, off_kid)) || SLOT(env, off_epoch) == NULL ||
        SLOT(env, off_seq) == NULL || SLOT(env, off_ts) == NULL ||
        !u64_field(SLOT(env, off_epoch), &epoch) || !u64_field(SLOT(env, off_seq), &seq) ||
        !u64_field(SLOT(env, off_ts), &ts))
        goto slow;

    /* key lookup, skew and replay check, MAC: the order of Opener._open */
    now = PyObject_CallNoArgs(self->clock);
    if (now == NULL)
        goto fail;
    if (!now_millis(now, &now_ms))
        goto slow;
    verify = PyObject_GetAttr(self->keyring, str_verify_attr);
    if (verify == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_Exception))
            goto fail;
        PyErr_Clear();
        goto slow;
    }
    if (!PyDict_CheckExact(verify))
        goto slow;
    entry = PyDict_GetItemWithError(verify, SLOT(env, off_kid)); /* borrowed */
    if (entry == NULL) {
        PyErr_Clear();
        goto slow; /* unknown key */
    }
    if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 2)
        goto slow;
    mac = PyTuple_GET_ITEM(entry, 0);
    if (expired(now, PyTuple_GET_ITEM(entry, 1)) != 0)
        goto slow;
    if (guard_check_c((GuardObject *)self->guard, sender, epoch, seq, ts, now_ms) != NULL)
        goto slow;
    if (!Py_IS_TYPE(mac, (PyTypeObject *)mackey_type))
        goto slow;
    per_subject = SLOT(mac, off_per_subject);
    if (per_subject == NULL || !PyDict_CheckExact(per_subject))
        goto slow;
    state = PyDict_GetItemWithError(per_subject, subject); /* borrowed */
    if (state == NULL || !Py_IS_TYPE(state, &HmacType)) {
        PyErr_Clear();
        goto slow; /* a subject not seen yet: the reference validates and binds it */
    }
    compute_tag((HmacObject *)state, buf, (size_t)(size - TAG), expected);
    if (CRYPTO_memcmp(expected, buf + size - TAG, TAG) != 0) {
        /* the reference would only hash the frame again to say so: Opener._bad_signature
         * counts and raises as it does */
        PyObject *none = PyObject_CallMethodOneArg((PyObject *)self, str_bad_sig, sender);
        Py_XDECREF(none);
        if (none != NULL)
            goto slow;
        goto fail;
    }

    /* verified: only now open a sealed body (Opener._unseal), scan and decode the body
     * (envelope.decode_body) */
    body_buf = buf + at;
    body_len = size - TAG - at;
    if (sealed) {
        const unsigned char *p = (const unsigned char *)body_buf;
        Py_ssize_t hdr = 0, clen = 0;
        unsigned char nonce[GCM_NONCE], prefix[7];
        Part aad[3];
        AesGcmObject *cipher;
        int opened;
        if (body_len >= 2 && p[0] == 0xc4)
            hdr = 2, clen = p[1];
        else if (body_len >= 3 && p[0] == 0xc5)
            hdr = 3, clen = (Py_ssize_t)p[1] << 8 | p[2];
        else if (body_len >= 5 && p[0] == 0xc6)
            hdr = 5, clen = (Py_ssize_t)p[1] << 24 | (Py_ssize_t)p[2] << 16 | p[3] << 8 | p[4];
        if (hdr == 0 || hdr + clen != body_len || clen < GCM_TAG ||
            !seal_aad(subject, buf, at, prefix, aad))
            goto slow; /* not one bin: the reference says malformed */
        cipher = memo_cipher(&self->memo, self->seal_ciphers, mac, sender, SLOT(env, off_epoch),
                             epoch);
        if (cipher == NULL)
            goto slow; /* the reference derives the key */
        plain = PyBytes_FromStringAndSize(NULL, clen - GCM_TAG);
        if (plain == NULL) {
            Py_DECREF(cipher);
            goto fail;
        }
        seal_nonce(seq, nonce);
        opened = gcm_open(cipher, nonce, aad, 3, p + hdr, (size_t)clen,
                          (unsigned char *)PyBytes_AS_STRING(plain));
        Py_DECREF(cipher);
        if (!opened)
            goto slow; /* bad_seal: the reference counts it */
        body_buf = PyBytes_AS_STRING(plain);
        body_len = clen - GCM_TAG;
    }
    {
        char msg[96];
        int err;
        if (scan_value_c((const unsigned char *)body_buf, body_len, 0,
                         self->max_depth, self->max_containers, msg, sizeof msg, &err) != NULL)
            goto slow; /* malformed: the reference says so */
        if (err) {
            PyErr_NoMemory();
            goto fail;
        }
    }
    {
        /* a sealed body's plaintext is all of `plain`: decoded from it, never from a view
         * that could outlive it */
        PyObject *src = plain != NULL ? Py_NewRef(plain)
                                      : PyMemoryView_FromMemory((char *)body_buf, body_len,
                                                                PyBUF_READ);
        if (src == NULL)
            goto fail;
        int collecting = PyGC_Disable(); /* as envelope.decode_body: no collector passes */
        body = PyObject_CallOneArg(body_fn, src);
        if (collecting)
            PyGC_Enable();
        Py_DECREF(src);
    }
    Py_CLEAR(plain);
    if (body == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_Exception))
            goto fail;
        PyErr_Clear();
        goto slow; /* malformed: the reference says so */
    }
    Py_XSETREF(SLOT(env, off_body), body);

    /* verified: move the window, then the message */
    if (guard_commit_c((GuardObject *)self->guard, sender, epoch, seq, ts, now_ms) < 0)
        goto fail;
    msg = ((PyTypeObject *)message_type)->tp_alloc((PyTypeObject *)message_type, 0);
    if (msg == NULL)
        goto fail;
    SLOT(msg, off_msg_subject) = Py_NewRef(subject);
    SLOT(msg, off_msg_env) = env; /* the reference moves to the message */
    SLOT(msg, off_msg_bus) = Py_NewRef(self->owner ? self->owner : Py_None);
    Py_DECREF(now);
    Py_DECREF(verify);
    return msg;
slow:
    Py_XDECREF(plain);
    Py_XDECREF(env);
    Py_XDECREF(now);
    Py_XDECREF(verify);
    return NULL;
fail:
    Py_XDECREF(plain);
    Py_XDECREF(env);
    Py_XDECREF(now);
    Py_XDECREF(verify);
    assert(PyErr_Occurred());
    return NULL;
}

PyDoc_STRVAR(core_open_doc,
             "open(subject, frame) -> the verified Message, or FrameRejected (counted).");

static PyObject *
core_open(CoreObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *msg, *call[3];

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "open(subject, frame) takes 2 arguments");
        return NULL;
    }
    msg = core_open_fast(self, args[0], args[1]);
    if (msg != NULL || PyErr_Occurred())
        return msg;
    call[0] = (PyObject *)self;
    call[1] = args[0];
    call[2] = args[1];
    return PyObject_VectorcallMethod(str_open_py, call, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                     NULL);
}

static PyMethodDef core_methods[] = {
    {"open", (PyCFunction)(void (*)(void))core_open, METH_FASTCALL, core_open_doc},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef core_members[] = {
    {"keyring", T_OBJECT, offsetof(CoreObject, keyring), 0, NULL},
    {"limits", T_OBJECT, offsetof(CoreObject, limits), 0, NULL},
    {"guard", T_OBJECT, offsetof(CoreObject, guard), 0, NULL},
    {"stats", T_OBJECT, offsetof(CoreObject, stats), 0, NULL},
    {"clock", T_OBJECT, offsetof(CoreObject, clock), 0, NULL},
    {"owner", T_OBJECT, offsetof(CoreObject, owner), 0, NULL},
    {"_sealed_subjects", T_OBJECT, offsetof(CoreObject, sealed_subjects), 0, NULL},
    {"_seal_ciphers", T_OBJECT, offsetof(CoreObject, seal_ciphers), 0, NULL},
    {NULL},
};

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "amcp._speedups.OpenerCore",
    .tp_doc = PyDoc_STR("Compiled base of amcp.protocol.Opener: the hot path of open()."),
    .tp_basicsize = sizeof(CoreObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)core_dealloc,
    .tp_traverse = (traverseproc)core_traverse,
    .tp_clear = (inquiry)core_clear,
    .tp_methods = core_methods,
    .tp_members = core_members,
};

/* ---------------------------------------------------------------------------------------
 * SealerCore: the base of amcp.protocol.Sealer when compiled. Its `seal` is Sealer._seal
 * for the common message (no flags or explicit seq, the signing key checked within the
 * last second, no compression, a subject already bound, plain headers): the same 11 fields
 * through the same msgpack encoder, the tag appended in the one allocation. On a sealed
 * subject (its AES key derived) the head is encoded with a nil body, and the body is
 * encrypted straight into the frame after it: one allocation too. It changes
 * nothing (not even seq) until the frame is made, so anything else is handed to _seal.
 */

typedef struct {
    PyObject_HEAD
    PyObject *sender, *keyring, *limits, *clock, *epoch, *seq, *id_prefix, *key, *key_checked,
        *compress_threshold, *compress_at, *sealed_subjects, *seal_ciphers; /* Sealer's */
    PyObject *cached_limits, *cached_key, *cached_kid, *cached_mac;
    Py_ssize_t max_frame;
    CipherMemo memo;
} SealerObject;

static PyObject *encode_fn, *empty_headers, *int_zero, *int_one, *int_sealed, *str_seal_py, *str_kid,
    *str_mac, *str_msg;

#define SEALER_FIELDS(X)                                                                     \
    X(sender) X(keyring) X(limits) X(clock) X(epoch) X(seq) X(id_prefix) X(key)              \
        X(key_checked) X(compress_threshold) X(compress_at) X(sealed_subjects)               \
            X(seal_ciphers) X(cached_limits) X(cached_key) X(cached_kid) X(cached_mac)

static int
sealer_traverse(SealerObject *self, visitproc visit, void *arg)
{
#define VISIT(f) Py_VISIT(self->f);
    SEALER_FIELDS(VISIT)
#undef VISIT
    MEMO_VISIT(self->memo);
    return 0;
}

static int
sealer_clear(SealerObject *self)
{
#define CLEAR(f) Py_CLEAR(self->f);
    SEALER_FIELDS(CLEAR)
#undef CLEAR
    MEMO_CLEAR(self->memo);
    return 0;
}

static void
sealer_dealloc(SealerObject *self)
{
    PyObject_GC_UnTrack(self);
    sealer_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* 1 if the kid and MacKey of self->key are cached, 0 to take the reference path. */
static int
sealer_key(SealerObject *self)
{
    PyObject *kid, *mac;

    if (self->key == self->cached_key)
        return 1;
    kid = PyObject_GetAttr(self->key, str_kid);
    mac = kid ? PyObject_GetAttr(self->key, str_mac) : NULL;
    if (mac == NULL || !PyUnicode_CheckExact(kid) || !Py_IS_TYPE(mac, (PyTypeObject *)mackey_type)) {
        Py_XDECREF(kid);
        Py_XDECREF(mac);
        if (PyErr_Occurred() && PyErr_ExceptionMatches(PyExc_Exception))
            PyErr_Clear();
        return 0;
    }
    Py_XSETREF(self->cached_kid, kid);
    Py_XSETREF(self->cached_mac, mac);
    Py_XSETREF(self->cached_key, Py_NewRef(self->key));
    return 1;
}

/* A new frame, NULL with an exception (a failing clock, no memory), or NULL with none: take
 * the reference path. */
static PyObject *
sealer_seal_fast(SealerObject *self, PyObject *subject, PyObject *body, PyObject *kind,
                 PyObject *headers)
{
    PyObject *now = NULL, *seq = NULL, *msg_id = NULL, *ts = NULL, *fields = NULL;
    PyObject *envelope = NULL, *frame = NULL, *per_subject, *state;
    AesGcmObject *cipher = NULL;
    uint64_t seq_v;
    int64_t now_ms;
    Py_ssize_t size, head = 0, hdr = 0, clen = 0;
    char *out;
    int r, sealed;

    if (encode_fn == NULL || !PyUnicode_CheckExact(subject) || !PyUnicode_CheckExact(kind) ||
        self->clock == NULL || self->key == NULL || self->key_checked == NULL ||
        self->seq == NULL || self->id_prefix == NULL || !PyBytes_CheckExact(self->id_prefix) ||
        PyBytes_GET_SIZE(self->id_prefix) != 8 || self->sender == NULL ||
        self->epoch == NULL || self->limits == NULL || self->compress_at == NULL ||
        !PyLong_CheckExact(self->compress_at) || !PyFloat_CheckExact(self->key_checked))
        return NULL;
    if (headers == Py_None)
        headers = empty_headers;
    else if (!PyDict_CheckExact(headers))
        return NULL;
    if (!u64_field(self->seq, &seq_v) || seq_v == UINT64_MAX)
        return NULL;
    if ((sealed = subject_sealed(self->sealed_subjects, subject)) < 0)
        return NULL; /* not decided yet: the reference decides */
    if (self->limits != self->cached_limits) {
        Py_ssize_t frame_limit;
        if (!limit_value(self->limits, str_max_frame, &frame_limit))
            return NULL;
        self->max_frame = frame_limit;
        Py_XSETREF(self->cached_limits, Py_NewRef(self->limits));
    }
    if (!sealer_key(self))
        return NULL; /* with an error only if it was not an Exception */
    now = PyObject_CallNoArgs(self->clock);
    if (now == NULL)
        return NULL;
    if (!PyFloat_CheckExact(now) ||
        !(PyFloat_AS_DOUBLE(now) - PyFloat_AS_DOUBLE(self->key_checked) < 1.0) ||
        !now_millis(now, &now_ms))
        goto slow; /* time to re-check the signing key, or an unusual clock */

    seq = PyLong_FromUnsignedLongLong(seq_v + 1);
    msg_id = PyBytes_FromStringAndSize(NULL, 16);
    ts = PyLong_FromLongLong(now_ms);
    fields = PyList_New(11);
    if (seq == NULL || msg_id == NULL || ts == NULL || fields == NULL)
        goto fail;
    memcpy(PyBytes_AS_STRING(msg_id), PyBytes_AS_STRING(self->id_prefix), 8);
    for (int i = 0; i < 8; i++)
        PyBytes_AS_STRING(msg_id)[8 + i] = (char)((seq_v + 1) >> (56 - 8 * i));
    PyList_SET_ITEM(fields, 0, Py_NewRef(int_one)); /* VERSION */
    PyList_SET_ITEM(fields, 1, Py_NewRef(sealed ? int_sealed : int_zero)); /* flags */
    PyList_SET_ITEM(fields, 2, Py_NewRef(msg_id));
    PyList_SET_ITEM(fields, 3, Py_NewRef(self->sender));
    PyList_SET_ITEM(fields, 4, Py_NewRef(self->epoch));
    PyList_SET_ITEM(fields, 5, Py_NewRef(seq));
    PyList_SET_ITEM(fields, 6, Py_NewRef(ts));
    PyList_SET_ITEM(fields, 7, Py_NewRef(self->cached_kid));
    PyList_SET_ITEM(fields, 8, Py_NewRef(kind));
    PyList_SET_ITEM(fields, 9, Py_NewRef(headers));
    PyList_SET_ITEM(fields, 10, Py_NewRef(body));
    envelope = PyObject_CallOneArg(encode_fn, fields);
    if (envelope == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_Exception))
            goto fail;
        PyErr_Clear(); /* the reference raises EncodeError */
        goto slow;
    }
    if (!PyBytes_CheckExact(envelope))
        goto slow;
    size = PyBytes_GET_SIZE(envelope);
    if (sealed) { /* the head, then bin(ciphertext || tag) in place of the body */
        Py_ssize_t header_bytes;
        head = body_start_c((const unsigned char *)PyBytes_AS_STRING(envelope), size,
                            &header_bytes);
        if (head < 0)
            goto slow; /* headers the reference refuses or encodes otherwise */
        clen = size - head + GCM_TAG;
        hdr = clen < 0x100 ? 2 : clen < 0x10000 ? 3 : 5;
        size = head + hdr + clen;
        if (size + TAG > self->max_frame)
            goto slow; /* too large: the reference says so */
        uint64_t epoch;
        if (!u64_field(self->epoch, &epoch) || !PyUnicode_CheckExact(self->sender))
            goto slow;
        cipher = memo_cipher(&self->memo, self->seal_ciphers, self->cached_mac, self->sender,
                             self->epoch, epoch);
        if (cipher == NULL)
            goto slow; /* the reference derives the key */
    }
    else if (size > PY_SSIZE_T_MAX - TAG || size + TAG > self->max_frame ||
             size >= PyLong_AsSsize_t(self->compress_at)) {
        PyErr_Clear();
        goto slow; /* too large (the reference says so) or to be compressed */
    }
    per_subject = SLOT(self->cached_mac, off_per_subject);
    if (per_subject == NULL || !PyDict_CheckExact(per_subject))
        goto slow;
    state = PyDict_GetItemWithError(per_subject, subject); /* borrowed */
    if (state == NULL || !Py_IS_TYPE(state, &HmacType)) {
        PyErr_Clear();
        goto slow; /* a subject not bound yet: the reference validates and binds it */
    }
    frame = PyBytes_FromStringAndSize(NULL, size + TAG);
    if (frame == NULL)
        goto fail;
    out = PyBytes_AS_STRING(frame);
    if (sealed) {
        unsigned char nonce[GCM_NONCE], prefix[7], *p = (unsigned char *)out + head;
        Part aad[3];
        memcpy(out, PyBytes_AS_STRING(envelope), (size_t)head);
        p[0] = (unsigned char)(hdr == 2 ? 0xc4 : hdr == 3 ? 0xc5 : 0xc6);
        for (Py_ssize_t i = 1; i < hdr; i++)
            p[i] = (unsigned char)((uint64_t)clen >> (8 * (hdr - 1 - i)));
        seal_nonce(seq_v + 1, nonce);
        if (!seal_aad(subject, out, head, prefix, aad) ||
            !gcm_seal(cipher, nonce, aad, 3, PyBytes_AS_STRING(envelope) + head,
                      (size_t)(clen - GCM_TAG), p + hdr))
            goto slow; /* the reference says what is wrong */
    }
    else
        memcpy(out, PyBytes_AS_STRING(envelope), (size_t)size);
    compute_tag((HmacObject *)state, out, (size_t)size, (unsigned char *)out + size);
    Py_SETREF(self->seq, seq); /* the message is made: now it takes its number */
    seq = NULL;
    r = 0;
    goto done;
slow:
    r = -1;
    goto done;
fail:
    r = -2;
done:
    Py_XDECREF(now);
    Py_XDECREF(seq);
    Py_XDECREF(msg_id);
    Py_XDECREF(ts);
    Py_XDECREF(fields);
    Py_XDECREF(envelope);
    Py_XDECREF(cipher);
    if (r != 0)
        Py_CLEAR(frame); /* made, then refused by OpenSSL */
    if (r == 0)
        return frame;
    assert(r == -1 ? !PyErr_Occurred() : PyErr_Occurred() != NULL);
    return NULL;
}

PyDoc_STRVAR(sealer_seal_doc,
             "seal(subject, body, kind='msg', headers=None, flags=0, seq=None) -> one signed "
             "frame for subject; EncodeError if it cannot be sent.");

static PyObject *
sealer_seal(SealerObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *frame, *kind = NULL;

    /* The fast path takes (subject, body[, kind[, headers]]) by position only. */
    if (kwnames == NULL && nargs >= 2 && nargs <= 4) {
        kind = nargs >= 3 ? args[2] : str_msg;
        frame = sealer_seal_fast(self, args[0], args[1], kind, nargs == 4 ? args[3] : Py_None);
        if (frame != NULL || PyErr_Occurred())
            return frame;
    }
    {
        PyObject *meth = PyObject_GetAttr((PyObject *)self, str_seal_py);
        if (meth == NULL)
            return NULL;
        frame = PyObject_Vectorcall(meth, args, (size_t)nargs, kwnames);
        Py_DECREF(meth);
        return frame;
    }
}

static PyMethodDef sealer_methods[] = {
    {"seal", (PyCFunction)(void (*)(void))sealer_seal, METH_FASTCALL | METH_KEYWORDS,
     sealer_seal_doc},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef sealer_members[] = {
    {"sender", T_OBJECT, offsetof(SealerObject, sender), 0, NULL},
    {"keyring", T_OBJECT, offsetof(SealerObject, keyring), 0, NULL},
    {"limits", T_OBJECT, offsetof(SealerObject, limits), 0, NULL},
    {"clock", T_OBJECT, offsetof(SealerObject, clock), 0, NULL},
    {"epoch", T_OBJECT, offsetof(SealerObject, epoch), 0, NULL},
    {"seq", T_OBJECT, offsetof(SealerObject, seq), 0, NULL},
    {"_id_prefix", T_OBJECT, offsetof(SealerObject, id_prefix), 0, NULL},
    {"_key", T_OBJECT, offsetof(SealerObject, key), 0, NULL},
    {"_key_checked", T_OBJECT, offsetof(SealerObject, key_checked), 0, NULL},
    {"compress_threshold", T_OBJECT, offsetof(SealerObject, compress_threshold), 0, NULL},
    {"_compress_at", T_OBJECT, offsetof(SealerObject, compress_at), 0, NULL},
    {"_sealed_subjects", T_OBJECT, offsetof(SealerObject, sealed_subjects), 0, NULL},
    {"_seal_ciphers", T_OBJECT, offsetof(SealerObject, seal_ciphers), 0, NULL},
    {NULL},
};

static PyTypeObject SealerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "amcp._speedups.SealerCore",
    .tp_doc = PyDoc_STR("Compiled base of amcp.protocol.Sealer: the hot path of seal()."),
    .tp_basicsize = sizeof(SealerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)sealer_dealloc,
    .tp_traverse = (traverseproc)sealer_traverse,
    .tp_clear = (inquiry)sealer_clear,
    .tp_methods = sealer_methods,
    .tp_members = sealer_members,
};

/* The offset of an object slot `name` defined on `type` itself, or -1 with an error. */
static Py_ssize_t
slot_offset(PyObject *type, const char *name)
{
    PyObject *descr;
    PyMemberDef *def;

    if (!PyType_Check(type)) {
        PyErr_SetString(PyExc_TypeError, "bind() takes types");
        return -1;
    }
    descr = PyDict_GetItemString(((PyTypeObject *)type)->tp_dict, name);
    if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type) ||
        PyDescr_TYPE(descr) != (PyTypeObject *)type) {
        PyErr_Format(PyExc_ValueError, "%R.%s is not a slot", type, name);
        return -1;
    }
    def = ((PyMemberDescrObject *)descr)->d_member;
    if (def->type != T_OBJECT_EX || def->offset < (Py_ssize_t)sizeof(PyObject) ||
        def->offset + (Py_ssize_t)sizeof(PyObject *) > ((PyTypeObject *)type)->tp_basicsize) {
        PyErr_Format(PyExc_ValueError, "%R.%s is not an object slot", type, name);
        return -1;
    }
    return def->offset;
}

PyDoc_STRVAR(bind_types_doc,
             "bind(decode_head, encode, Envelope, Message, MacKey, decode_body): the envelope "
             "head decoder and encoder, the types OpenerCore.open and SealerCore.seal read "
             "and build (their slots are checked here), and the body decoder.");

static PyObject *
bind_types(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t offs[12];
    static const char *env_fields[] = {"flags", "sender", "epoch", "seq", "ts_ms", "kid",
                                       "headers", "body"};
    static const char *msg_fields[] = {"subject", "env", "bus"};

    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError,
                        "bind(decode_head, encode, Envelope, Message, MacKey, decode_body)");
        return NULL;
    }
    if (!PyCallable_Check(args[0]) || !PyCallable_Check(args[1]) ||
        !PyCallable_Check(args[5])) {
        PyErr_SetString(PyExc_TypeError, "the decoders and encode must be callable");
        return NULL;
    }
    PyObject *decode = args[0], *encode = args[1], *env_t = args[2], *msg_t = args[3],
             *mac_t = args[4];
    for (int i = 0; i < 8; i++)
        if ((offs[i] = slot_offset(env_t, env_fields[i])) < 0)
            return NULL;
    for (int i = 0; i < 3; i++)
        if ((offs[8 + i] = slot_offset(msg_t, msg_fields[i])) < 0)
            return NULL;
    if ((offs[11] = slot_offset(mac_t, "_per_subject")) < 0)
        return NULL;
    if (((PyTypeObject *)msg_t)->tp_itemsize != 0) {
        PyErr_SetString(PyExc_ValueError, "Message must be a fixed-size type");
        return NULL;
    }
    off_flags = offs[0];
    off_sender = offs[1];
    off_epoch = offs[2];
    off_seq = offs[3];
    off_ts = offs[4];
    off_kid = offs[5];
    off_headers = offs[6];
    off_body = offs[7];
    off_msg_subject = offs[8];
    off_msg_env = offs[9];
    off_msg_bus = offs[10];
    off_per_subject = offs[11];
    Py_XSETREF(decode_fn, Py_NewRef(decode));
    Py_XSETREF(body_fn, Py_NewRef(args[5]));
    Py_XSETREF(encode_fn, Py_NewRef(encode));
    Py_XSETREF(envelope_type, Py_NewRef(env_t));
    Py_XSETREF(message_type, Py_NewRef(msg_t));
    Py_XSETREF(mackey_type, Py_NewRef(mac_t));
    Py_RETURN_NONE;
}

/* check_plain: attest._check_plain's walk of a record before its canonical encoding
 * (audit entries, member records: built from arbitrary data), in C. The same checks in
 * the same order, so the same first fault and message; None when the value is plain. */

static int
plain_fault(PyObject *value, Py_ssize_t depth, Py_ssize_t max_depth, PyObject **fault)
{
    int rc = 0;

    if (depth > max_depth) {
        *fault = PyUnicode_FromString("record nested too deep");
        return *fault == NULL ? -1 : 1;
    }
    if (value == Py_None || PyBool_Check(value) || PyUnicode_Check(value) || PyBytes_Check(value))
        return 0;
    if (PyLong_Check(value)) {
        int overflow;
        PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow == 0)
            return PyErr_Occurred() ? -1 : 0;
        if (overflow > 0) {
            PyLong_AsUnsignedLongLong(value);
            if (!PyErr_Occurred())
                return 0;
            if (!PyErr_ExceptionMatches(PyExc_OverflowError))
                return -1;
            PyErr_Clear();
        }
        *fault = PyUnicode_FromString("integer outside msgpack's 64-bit range");
        return *fault == NULL ? -1 : 1;
    }
    if (PyFloat_Check(value)) {
        if (isfinite(PyFloat_AS_DOUBLE(value)))
            return 0;
        *fault = PyUnicode_FromString("non-finite float");
        return *fault == NULL ? -1 : 1;
    }
    if (PyList_Check(value) || PyTuple_Check(value)) {
        PyObject *seq = PySequence_Fast(value, "a list");
        Py_ssize_t i, n;
        if (seq == NULL)
            return -1;
        if (Py_EnterRecursiveCall(" in check_plain")) {
            Py_DECREF(seq);
            return -1;
        }
        n = PySequence_Fast_GET_SIZE(seq);
        for (i = 0; i < n && rc == 0; i++)
            rc = plain_fault(PySequence_Fast_GET_ITEM(seq, i), depth + 1, max_depth, fault);
        Py_LeaveRecursiveCall();
        Py_DECREF(seq);
        return rc;
    }
    if (PyDict_Check(value)) {
        Py_ssize_t pos = 0;
        PyObject *key, *item;
        if (Py_EnterRecursiveCall(" in check_plain"))
            return -1;
        while (rc == 0 && PyDict_Next(value, &pos, &key, &item)) {
            if (!PyUnicode_Check(key)) {
                *fault = PyUnicode_FromString("map keys must be str");
                rc = *fault == NULL ? -1 : 1;
                break;
            }
            Py_INCREF(item); /* a value's own walk cannot drop it from under us */
            rc = plain_fault(item, depth + 1, max_depth, fault);
            Py_DECREF(item);
        }
        Py_LeaveRecursiveCall();
        return rc;
    }
    {
        PyObject *name = PyType_GetName(Py_TYPE(value));
        if (name == NULL)
            return -1;
        *fault = PyUnicode_FromFormat("%U has no canonical form", name);
        Py_DECREF(name);
        return *fault == NULL ? -1 : 1;
    }
}

PyDoc_STRVAR(check_plain_doc,
             "check_plain(value, max_depth) -> None if value has one msgpack form (nil, bool, "
             "64-bit int, finite float, str, bytes, lists and str-keyed maps, nested at most "
             "max_depth deep), else what is wrong (attest.py_check_plain's message).");

static PyObject *
check_plain(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t max_depth;
    PyObject *fault = NULL;
    int rc;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "check_plain(value, max_depth)");
        return NULL;
    }
    if ((max_depth = PyLong_AsSsize_t(args[1])) == -1 && PyErr_Occurred())
        return NULL;
    rc = plain_fault(args[0], 0, max_depth, &fault);
    if (rc < 0)
        return NULL;
    if (rc == 0)
        Py_RETURN_NONE;
    return fault;
}

static PyMethodDef module_methods[] = {
    {"bind", (PyCFunction)(void (*)(void))bind_types, METH_FASTCALL, bind_types_doc},
    {"scan_value", (PyCFunction)(void (*)(void))scan_value, METH_FASTCALL, scan_value_doc},
    {"check_plain", (PyCFunction)(void (*)(void))check_plain, METH_FASTCALL, check_plain_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "amcp._speedups",
    .m_doc = "Compiled hot paths of amcp (optional): HMAC-SHA256, the replay window, "
             "AES-256-GCM, and Sealer.seal and Opener.open for the common frame, plain or "
             "sealed.",
    .m_size = -1,
    .m_methods = module_methods,
};

static int
add_type(PyObject *module, const char *name, PyTypeObject *type)
{
    Py_INCREF(type);
    if (PyModule_AddObject(module, name, (PyObject *)type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
}

static PyObject *
intern(PyObject **slot, const char *text)
{
    if (*slot == NULL)
        *slot = PyUnicode_InternFromString(text);
    return *slot;
}

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyObject *module;

    if (PyType_Ready(&HmacType) < 0 || PyType_Ready(&WindowType) < 0 ||
        PyType_Ready(&GuardType) < 0 || PyType_Ready(&CoreType) < 0 ||
        PyType_Ready(&SealerType) < 0 || PyType_Ready(&AesGcmType) < 0)
        return NULL;
    if (empty_headers == NULL && (empty_headers = PyDict_New()) == NULL)
        return NULL;
    if (int_zero == NULL && (int_zero = PyLong_FromLong(0)) == NULL)
        return NULL;
    if (int_one == NULL && (int_one = PyLong_FromLong(1)) == NULL)
        return NULL;
    if (int_sealed == NULL && (int_sealed = PyLong_FromLong(FLAG_SEALED)) == NULL)
        return NULL;
    if (!intern(&str_bad_sig, "_bad_signature") || !intern(&str_stale, "stale") || !intern(&str_replay, "replay") ||
        !intern(&str_open_py, "_open") || !intern(&str_verify_attr, "_verify") ||
        !intern(&str_max_frame, "max_frame_bytes") ||
        !intern(&str_max_header, "max_header_bytes") || !intern(&str_max_depth, "max_depth") ||
        !intern(&str_max_containers, "max_containers") ||
        !intern(&str_seal_py, "_seal") || !intern(&str_kid, "kid") || !intern(&str_mac, "mac") ||
        !intern(&str_msg, "msg"))
        return NULL;
    module = PyModule_Create(&speedups_module);
    if (module == NULL)
        return NULL;
    if (add_type(module, "HmacSha256", &HmacType) < 0 ||
        add_type(module, "ReplayGuard", &GuardType) < 0 ||
        add_type(module, "OpenerCore", &CoreType) < 0 ||
        add_type(module, "SealerCore", &SealerType) < 0 ||
        add_type(module, "AesGcm", &AesGcmType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
