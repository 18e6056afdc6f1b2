# The installed library and CLI, used from a temporary prefix as an outside program would
# (label install: a build with the sanitizers would need them in the example too, so its runs
# select cpu and cli only).
gpuals_add_script_test(NAME test_install SCRIPT test_install.sh LABELS install)
