"""Every event the plans service consumes, and what it does with it (review.completed arrives with the results service)."""

from ezone_kit.consumer import ConsumerSpec

consumers: list[ConsumerSpec] = []
