/*
 * status.c - thread-local failure messages and the status -> name / exit-code tables.
 */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MESSAGE_SIZE 2048

static _Thread_local char last_message[MESSAGE_SIZE];

gpuals_status gpuals_fail(gpuals_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    va_end(ap);
    return s;
}

gpuals_status gpuals_fail_context(gpuals_status s, const char *fmt, ...)
{
    char old[MESSAGE_SIZE];
    memcpy(old, last_message, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(last_message, sizeof last_message, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n + 2 < sizeof last_message) {
        size_t used = (size_t)n;
        memcpy(last_message + used, ": ", 2);
        used += 2;
        size_t room = sizeof last_message - used - 1;
        size_t len = strnlen(old, room);
        memcpy(last_message + used, old, len);
        last_message[used + len] = '\0';
    }
    return s;
}

void gpuals_put_note(char *note, size_t len, const char *fmt, ...)
{
    if (note == NULL || len == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(note, len, fmt, ap);
    va_end(ap);
}

void gpuals_clear_error(void) { last_message[0] = '\0'; }

const char *gpuals_last_error(void) { return last_message; }

/* The one table that ties statuses to names and exit codes; the README's exit-code table and
 * `gpu-als --help` print the same rows. */
static const struct {
    const char *name;
    int exit_code;
} status_table[] = {
    [GPUALS_OK] = {"ok", 0},
    [GPUALS_ERR_USAGE] = {"usage error", 2},
    [GPUALS_ERR_IO] = {"i/o error", 3},
    [GPUALS_ERR_PARSE] = {"parse error", 4},
    [GPUALS_ERR_EMPTY] = {"no data", 5},
    [GPUALS_ERR_MISMATCH] = {"inputs disagree", 6},
    [GPUALS_ERR_NOT_FOUND] = {"not found", 7},
    [GPUALS_ERR_AMBIGUOUS] = {"ambiguous", 8},
    [GPUALS_ERR_NUMERIC] = {"numerical failure", 9},
    [GPUALS_ERR_NOMEM] = {"out of memory", 10},
    [GPUALS_ERR_NO_DEVICE] = {"no usable GPU", 11},
    [GPUALS_ERR_DEVICE] = {"GPU error", 12},
    [GPUALS_ERR_INTERNAL] = {"internal error", 70},
};

const char *gpuals_status_name(gpuals_status s)
{
    if ((unsigned)s >= sizeof status_table / sizeof status_table[0]) return "unknown status";
    return status_table[s].name;
}

int gpuals_status_exit_code(gpuals_status s)
{
    if ((unsigned)s >= sizeof status_table / sizeof status_table[0]) return 70;
    return status_table[s].exit_code;
}
