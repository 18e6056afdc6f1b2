# Queries (score, recommend, similar, explain, fold-in, title lookup) and model directories.
gpuals_add_test(NAME test_query_topn SOURCES test_query_topn.c LABELS cpu)
gpuals_add_test(NAME test_query_recommend SOURCES test_query_recommend.c LABELS cpu)
gpuals_add_test(NAME test_query_similar SOURCES test_query_similar.c LABELS cpu)
gpuals_add_test(NAME test_query_explain SOURCES test_query_explain.c LABELS cpu)
gpuals_add_test(NAME test_query_lookup SOURCES test_query_lookup.c LABELS cpu)
gpuals_add_test(NAME test_model_io SOURCES test_model_io.c LABELS cpu)
# The save's race tests change the target between its check and its rename.
target_link_options(test_model_io PRIVATE "LINKER:--wrap=renameat2")
