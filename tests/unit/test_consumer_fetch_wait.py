"""A consumer whose events nobody waits on fetches with the background wait; the others with the prompt one."""

from __future__ import annotations

from ezone_kit.consumer import ConsumerSpec, ConsumerWorker
from ezone_kit.db import service_metadata
from ezone_kit.settings import KitSettings
from ezone_kit.uow import Outbox


async def test_a_background_consumer_fetches_with_the_background_wait_and_a_prompt_one_with_the_prompt_wait():
    settings = KitSettings(kafka_fetch_max_wait_ms=20, kafka_background_fetch_max_wait_ms=100)
    outbox = Outbox(service_metadata("unit"), "/unit")
    waits = {}
    for background in (False, True):
        spec = ConsumerSpec(name="events", topics=("unit.events",), handlers={}, background=background)
        worker = ConsumerWorker("unit", spec, sessions=None, outbox=outbox, publisher=None, settings=settings)  # type: ignore[arg-type]
        consumer = worker._new_consumer()
        waits[background] = consumer._fetch_max_wait_ms
        await consumer.stop()
    assert waits == {False: 20, True: 100}
