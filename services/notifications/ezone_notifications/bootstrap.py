"""Wires the notifications service: its tables, routers and consumers, in one place."""

from ezone_kit.directory import school_directory_router
from ezone_kit.service import ServiceDefinition

from .config import Settings
from .handlers import consumers
from .models import metadata, schools

definition = ServiceDefinition(
    name="notifications",
    title="ezone Notifications",
    description="Board alerts on the member's channels, and the board's web page.",
    package="ezone_notifications",
    metadata=metadata,
    routers=[school_directory_router(schools)],
    consumers=consumers,
    settings_class=Settings,
)
