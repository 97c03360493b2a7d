"""Wires the results service: its tables, routers and consumers, in one place."""

from ezone_kit.directory import school_directory_router
from ezone_kit.service import ServiceDefinition

from .config import Settings
from .edfi.hot_routes import HOT_ROUTES
from .edfi.oauth_router import router as oauth_router
from .edfi.router import router as edfi_router
from .groups.router import router as groups_router
from .handlers import consumers
from .ingest.router import router as ingest_router
from .models import metadata, schools
from .review.router import router as review_router
from .review.worker import review_worker
from .state_aggregates.router import router as state_aggregates_router

definition = ServiceDefinition(
    name="results",
    title="ezone Results",
    description="SIS ingestion of assessment results and the accountability reviews they trigger.",
    package="ezone_results",
    metadata=metadata,
    routers=[edfi_router, school_directory_router(schools), review_router, oauth_router, state_aggregates_router,
             ingest_router, groups_router],
    consumers=consumers,
    workers=[review_worker],
    settings_class=Settings,
    hot_routes=HOT_ROUTES,
)
