"""Wires the catalog service: its tables, routers and consumers, in one place."""

from ezone_kit.directory import school_directory_router
from ezone_kit.service import ServiceDefinition

from .config import Settings
from .evidence.router import router as evidence_router
from .handlers import consumers
from .models import Base, schools
from .orders.router import router as orders_router
from .partners.router import router as partners_router
from .services.router import router as services_router

definition = ServiceDefinition(
    name="catalog",
    title="ezone Services catalog",
    description="District services and vetted partners, ordered by schools within their approved budgets; "
                "partners' evidence of impact, computed from accountability reviews; recommendations for schools that need help.",
    package="ezone_catalog",
    metadata=Base.metadata,
    routers=[school_directory_router(schools), services_router, partners_router, orders_router, evidence_router],
    consumers=consumers,
    settings_class=Settings,
)
