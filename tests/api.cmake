# The public C API from the outside: only include/gpuals.h.
gpuals_add_test(NAME test_api SOURCES test_api.c LABELS cpu)
