# The installed library and CLI, used from a temporary prefix as an outside program would
# (label install). Not in a build with the sanitizers: a program linking that library would
# need the sanitizers' runtime too.
if(NOT GPUALS_SANITIZE)
  gpuals_add_script_test(NAME test_install SCRIPT test_install.sh LABELS install)
endif()
