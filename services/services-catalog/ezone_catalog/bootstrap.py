"""Wires the catalog service: its tables, routers and consumers, in one place."""

from ezone_kit.directory import school_directory_router
from ezone_kit.service import ServiceDefinition

from .config import Settings
from .handlers import consumers
from .models import metadata, schools

definition = ServiceDefinition(
    name="catalog",
    title="ezone Services catalog",
    description="District services and vetted partners, ordered by schools within their approved budgets.",
    package="ezone_catalog",
    metadata=metadata,
    routers=[school_directory_router(schools)],
    consumers=consumers,
    settings_class=Settings,
)
