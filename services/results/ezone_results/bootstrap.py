"""Wires the results service: its tables, routers and consumers, in one place."""

from ezone_kit.directory import school_directory_router
from ezone_kit.service import ServiceDefinition

from .config import Settings
from .handlers import consumers
from .models import metadata, schools

definition = ServiceDefinition(
    name="results",
    title="ezone Results",
    description="SIS ingestion of assessment results and the accountability reviews they trigger.",
    package="ezone_results",
    metadata=metadata,
    routers=[school_directory_router(schools)],
    consumers=consumers,
    settings_class=Settings,
)
