"""Every event the results service consumes, and what it does with it."""

from ezone_kit.consumer import ConsumerSpec
from ezone_kit.zones import ProjectedZones
from ezone_schemas import topics

from .models import metadata
from .review.handlers import handlers as review_handlers

consumers = [
    # The plans service's schools (kept in the school directory), plans and policies. Its own results.posted need no
    # consumer: each queues its review in the transaction that stores the results (see review/handlers.py).
    ConsumerSpec(name="events", topics=(topics.PLANS,), handlers=review_handlers, background=True,
                 zones=ProjectedZones.of(metadata)),
]
