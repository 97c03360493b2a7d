"""Every event the plans service consumes, and what it does with it."""

from ezone_kit.consumer import ConsumerSpec
from ezone_kit.zones import RegisteredZones
from ezone_schemas import PartnerVettingChanged, ReviewCompleted, topics

from .autonomy.handlers import on_partner_vetting_changed, on_review_completed
from .models import Zone

consumers = [
    ConsumerSpec(
        name="events",
        topics=(topics.RESULTS, topics.CATALOG),
        background=True,  # a tier change reaches the board through the notifications consumer, which is prompt
        handlers={ReviewCompleted: on_review_completed, PartnerVettingChanged: on_partner_vetting_changed},
        zones=RegisteredZones(Zone.__table__.c.id),
    ),
]
