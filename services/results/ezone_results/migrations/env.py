from ezone_kit.migrations import run_env

from ezone_results.bootstrap import definition

run_env(definition.metadata)
