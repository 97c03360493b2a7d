from ezone_kit.migrations import run_env

from ezone_catalog.bootstrap import definition

run_env(definition.metadata)
