# gpuals-synth: seeded MovieLens-shaped rating files for benchmarks and load tests
# (bench/synth.c; `gpuals-synth --help`). Needs nothing from the library.
add_executable(gpuals-synth ${CMAKE_CURRENT_SOURCE_DIR}/synth.c)
target_link_libraries(gpuals-synth PRIVATE ${MATH_LIBRARY})
