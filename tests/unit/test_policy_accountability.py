"""The zone policy's accountability assessments: one default on both sides of the event, and the demo zone's."""

from __future__ import annotations

from ezone_plans.policy.document import PolicyDocument
from ezone_results.review.policy import ReviewPolicy
from ezone_schemas.vocabulary import MCAS_NAMESPACE, ResultChoice

from ezone.demo import DEMO_POLICY


def test_the_review_reads_the_plans_services_defaults_and_documents_without_the_field_alike():
    document = PolicyDocument().model_dump(mode="json")
    sent = ReviewPolicy.model_validate(document)
    assert sent.model_dump(mode="json", include={"accountability_assessments", "result_choice"}) == {
        "accountability_assessments": document["accountability_assessments"], "result_choice": "latest"}
    # A policy version adopted before the field existed means the defaults, on both sides.
    older = {key: value for key, value in document.items() if key not in ("accountability_assessments", "result_choice")}
    assert ReviewPolicy.model_validate(older) == sent
    assert PolicyDocument.model_validate(older) == PolicyDocument()


def test_the_demo_zone_counts_mcas_only():
    policy = PolicyDocument.model_validate({**PolicyDocument().model_dump(mode="json"), **DEMO_POLICY})
    [mcas] = policy.accountability_assessments
    assert (mcas.namespace, mcas.assessment_identifier, mcas.assessment_category) == (MCAS_NAMESPACE, None, None)
    assert {"Meeting Expectations", "Exceeding Expectations"} <= set(mcas.proficient_levels)
    assert policy.result_choice is ResultChoice.LATEST
