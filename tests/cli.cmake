# Tests of the gpu-als binary: every subcommand, including invocations that must fail and their
# exit codes (the table in cli.c and the README).
gpuals_add_script_test(NAME test_cli_basics SCRIPT test_cli_basics.sh LABELS cli)
gpuals_add_script_test(NAME test_cli_queries SCRIPT test_cli_queries.sh LABELS cli)
gpuals_add_script_test(NAME test_cli_walkthrough SCRIPT test_cli_walkthrough.sh LABELS "cli;slow")
