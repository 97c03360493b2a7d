"""Platform metrics: what an operator watches — throughput, consumer lag, outbox depth, dead letters."""

from __future__ import annotations

from ezone.stack import wait_for
from tests.helpers import register_school, register_zone, wait_for_count


def points(reader, name: str) -> list:
    data = reader.get_metrics_data()
    return [
        point
        for resource in (data.resource_metrics if data else [])
        for scope in resource.scope_metrics
        for metric in scope.metrics if metric.name == name
        for point in metric.data.data_points
    ]


async def test_metrics_count_processed_events_per_group_and_report_lag_and_outbox_depth(zone_stack, zone_id, metric_reader):
    await register_zone(zone_stack, zone_id)
    school = await register_school(zone_stack, zone_id)
    await wait_for_count(zone_stack, "SELECT count(*) FROM notifications.schools WHERE id = :id", 1, id=school["id"])

    async def counted() -> bool:
        processed = {p.attributes["group"]: p.value for p in points(metric_reader, "ezone.consumer.events")
                     if p.attributes["outcome"] == "processed"}
        return all(processed.get(f"ezone.{s}.events", 0) > 0 for s in ("results", "catalog", "notifications"))

    await wait_for(counted, 10, what="processed-event counts for the three consumer groups")
    published = {p.attributes["service"]: p.value for p in points(metric_reader, "ezone.outbox.published")}
    assert published["plans"] >= 2
    depth = {p.attributes["service"]: p.value for p in points(metric_reader, "ezone.outbox.depth")}
    assert set(depth) == {"plans", "results", "catalog", "notifications"} and all(v >= 0 for v in depth.values())
    lag = {p.attributes["group"] for p in points(metric_reader, "ezone.consumer.lag")}
    assert {"ezone.results.events", "ezone.catalog.events", "ezone.notifications.events"} <= lag
