/*
 * npy.h - reading and writing NumPy .npy files (format version 1.0) for model directories.
 *
 * An .npy file is the magic bytes "\x93NUMPY", a version (1.0 here), a little-endian header
 * length, a Python-literal dict naming the element type, the memory order and the shape, padded
 * with spaces and a newline so the data starts at a multiple of 64 bytes, then the elements.
 * We write only C-order little-endian arrays of float32, int32 and int64 with one or two
 * dimensions, which numpy.load reads directly. The reader accepts what numpy itself writes for
 * those types (versions 1.0, 2.0 and 3.0 of the header) and nothing else.
 *
 * Both directions also hash every byte of the file with XXH64 (seed 0), so a model directory can
 * record and later verify a checksum without reading any file twice.
 */
#ifndef GPUALS_NPY_H
#define GPUALS_NPY_H

#include <stdint.h>

#include "gpuals.h"

typedef enum {
    NPY_FLOAT32 = 0, /* '<f4' */
    NPY_INT32,       /* '<i4' */
    NPY_INT64,       /* '<i8' */
} npy_dtype;

/* Bytes per element of t (4 or 8). */
int npy_itemsize(npy_dtype t);

/* The numpy type string of t, e.g. "<f4". */
const char *npy_descr(npy_dtype t);

/* Write the ndim-dimensional (1 or 2) C-order array data of shape[0] x shape[1] elements of type
 * t to path (created or truncated), flushed to disk before returning. *xxh (may be NULL)
 * receives the XXH64 of the whole file and *bytes (may be NULL) its size. On failure the file
 * may be left partly written (the caller removes it); GPUALS_ERR_IO names path and the reason,
 * GPUALS_ERR_USAGE a bad argument. */
gpuals_status npy_write(const char *path, npy_dtype t, int ndim, const int64_t *shape,
                        const void *data, uint64_t *xxh, uint64_t *bytes);

/* Read path, which must hold a C-order array of type t with ndim dimensions. shape receives
 * ndim extents; *data receives a malloc'ed copy of the elements (the caller frees it; never NULL
 * on success, even for zero elements); *xxh (may be NULL) the XXH64 of the whole file.
 * Failures name path: GPUALS_ERR_IO when it cannot be opened or read, GPUALS_ERR_PARSE when
 * the header is malformed, the type, order or rank differ from what is asked, or the data is
 * shorter or longer than the shape says (a truncated file). *data is NULL on failure. */
gpuals_status npy_read(const char *path, npy_dtype t, int ndim, int64_t *shape, void **data,
                       uint64_t *xxh);

#endif /* GPUALS_NPY_H */
