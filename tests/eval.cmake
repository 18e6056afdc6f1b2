# Held-out evaluation: splits, ranking metrics, and the eval/tune commands.
gpuals_add_test(NAME test_split SOURCES test_split.c LABELS cpu)
gpuals_add_test(NAME test_metrics SOURCES test_metrics.c LABELS cpu)
gpuals_add_script_test(NAME test_cli_eval SCRIPT test_cli_eval.sh LABELS cli slow)
