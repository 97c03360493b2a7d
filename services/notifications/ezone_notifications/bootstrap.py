"""Wires the notifications service: its tables, routers, consumers and workers, in one place."""

from ezone_kit.directory import school_directory_router
from ezone_kit.service import ServiceDefinition

from .alerts.router import router as alerts_router
from .board.router import router as board_router
from .config import Settings
from .deliveries.worker import delivery_worker
from .handlers import consumers
from .models import metadata, schools
from .preferences.router import router as preferences_router
from .rules.router import router as rules_router
from .webhooks.router import router as webhooks_router

definition = ServiceDefinition(
    name="notifications",
    title="ezone Notifications",
    description="Board alerts on the member's channels, and the board's web page.",
    package="ezone_notifications",
    metadata=metadata,
    routers=[school_directory_router(schools), rules_router, alerts_router, preferences_router, webhooks_router,
             board_router],
    consumers=consumers,
    workers=[delivery_worker],
    settings_class=Settings,
)
