/*
 * status.h - recording why a library call failed.
 *
 * Library code never prints. A function that fails calls gpuals_fail(), which formats the
 * message into a thread-local buffer (read back by gpuals_last_error()) and returns the
 * status, so a failure site reads:
 *
 *     return gpuals_fail(GPUALS_ERR_PARSE, "%s:%lld: expected 3 fields, found %d",
 *                        path, (long long)line, n);
 */
#ifndef GPUALS_STATUS_H
#define GPUALS_STATUS_H

#include <stddef.h>

#include "gpuals.h"

#if defined(__GNUC__)
#define GPUALS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define GPUALS_PRINTF(a, b)
#endif

/* Record a message for status s and return s. */
gpuals_status gpuals_fail(gpuals_status s, const char *fmt, ...) GPUALS_PRINTF(2, 3);

/* Prepend "context: " to the current message (e.g. the file being loaded) and return s. */
gpuals_status gpuals_fail_context(gpuals_status s, const char *fmt, ...) GPUALS_PRINTF(2, 3);

/* Format a note into a caller's buffer of len bytes (nothing when note is NULL or len 0): how
 * the library says which device did the work and why, without printing. */
void gpuals_put_note(char *note, size_t len, const char *fmt, ...) GPUALS_PRINTF(3, 4);

/* How a note begins when --device auto moved the work to the CPU because the GPU had too
 * little memory (training and top-n alike), so that callers can tell it from the others. */
#define GPUALS_NOTE_GPU_TOO_SMALL "the GPU has too little memory"

/* Forget the last message of this thread. */
void gpuals_clear_error(void);

/* Evaluate a call returning gpuals_status and return it from the caller on failure. */
#define GPUALS_TRY(call)                                                                      \
    do {                                                                                      \
        gpuals_status try_status_ = (call);                                                   \
        if (try_status_ != GPUALS_OK) return try_status_;                                     \
    } while (0)

#endif /* GPUALS_STATUS_H */
