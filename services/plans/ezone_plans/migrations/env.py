from ezone_kit.migrations import run_env

from ezone_plans.bootstrap import definition

run_env(definition.metadata)
