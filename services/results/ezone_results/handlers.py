"""Every event the results service consumes, and what it does with it."""

from ezone_kit.consumer import ConsumerSpec
from ezone_kit.directory import school_directory_handlers
from ezone_schemas import topics

from .models import schools
from .review.handlers import handlers as review_handlers

consumers = [
    # One group for both topics: its own results.posted and the plans service's schools, plans and policies.
    ConsumerSpec(name="events", topics=(topics.PLANS, topics.RESULTS),
                 handlers={**school_directory_handlers(schools), **review_handlers}),
]
