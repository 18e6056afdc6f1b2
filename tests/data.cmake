# Tests of the data pipeline (id maps, CSR, readers, titles, gpuals_data, gpuals-synth); see
# tests/test_csr.c, test_readers.c, test_dataset.c and test_synth.c. Fixtures are in
# tests/fixtures/data/.
gpuals_add_test(NAME test_data_csr SOURCES test_csr.c LABELS cpu)
gpuals_add_test(NAME test_data_readers SOURCES test_readers.c LABELS cpu)
gpuals_add_test(NAME test_data_dataset SOURCES test_dataset.c LABELS cpu)
gpuals_add_test(NAME test_data_synth SOURCES test_synth.c LABELS cpu
                ARGS $<TARGET_FILE:gpuals-synth>)
add_dependencies(test_data_synth gpuals-synth)
