"""Wires the plans service: its tables, routers and consumers, in one place."""

from ezone_kit.service import ServiceDefinition

from .audit.router import router as audit_router
from .board.router import router as board_router
from .config import Settings
from .handlers import consumers
from .models import Base
from .operating_plans.router import router as plans_router
from .policy.router import router as policy_router
from .registry.router import router as registry_router

definition = ServiceDefinition(
    name="plans",
    title="ezone Plans",
    description="Zones, schools, board members, annual operating plans over five levers, board decisions, autonomy tiers.",
    package="ezone_plans",
    metadata=Base.metadata,
    routers=[registry_router, policy_router, board_router, plans_router, audit_router],
    consumers=consumers,
    settings_class=Settings,
)
