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
 */
#define PY_SSIZE_T_CLEAN
#define OPENSSL_API_COMPAT 0x10101000L
#include <Python.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

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

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "amcp._speedups",
    .m_doc = "Compiled HMAC-SHA256 for amcp.signing (optional).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyObject *module;

    if (PyType_Ready(&HmacType) < 0)
        return NULL;
    module = PyModule_Create(&speedups_module);
    if (module == NULL)
        return NULL;
    Py_INCREF(&HmacType);
    if (PyModule_AddObject(module, "HmacSha256", (PyObject *)&HmacType) < 0) {
        Py_DECREF(&HmacType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
