"""Wires the plans service: its tables, routers and consumers, in one place."""

from ezone_kit.service import ServiceDefinition

from .config import Settings
from .handlers import consumers
from .models import Base
from .registry.router import router as registry_router

definition = ServiceDefinition(
    name="plans",
    title="ezone Plans",
    description="Zones, schools, board members, annual operating plans over five levers, board decisions, autonomy tiers.",
    package="ezone_plans",
    metadata=Base.metadata,
    routers=[registry_router],
    consumers=consumers,
    settings_class=Settings,
)
