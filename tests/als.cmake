# Tests of the CPU ALS engine (host/als*.c, host/train.c).
gpuals_add_test(NAME test_als_solvers SOURCES test_als_solvers.c LABELS cpu)
gpuals_add_test(NAME test_als_train SOURCES test_als_train.c LABELS cpu)
gpuals_add_test(NAME test_als_movielens SOURCES test_als_movielens.c LABELS cpu slow)
