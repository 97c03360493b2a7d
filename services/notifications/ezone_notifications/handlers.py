"""Every event the notifications service consumes, and what it does with it."""

from ezone_kit.consumer import ConsumerSpec
from ezone_kit.directory import school_directory_handlers
from ezone_schemas import topics

from .models import schools

consumers = [
    ConsumerSpec(name="events", topics=(topics.PLANS,), handlers={**school_directory_handlers(schools)}),
]
