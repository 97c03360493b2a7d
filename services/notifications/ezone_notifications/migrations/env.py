from ezone_kit.migrations import run_env

from ezone_notifications.bootstrap import definition

run_env(definition.metadata)
