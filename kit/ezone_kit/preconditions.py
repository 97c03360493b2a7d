"""Optimistic concurrency for updates: `ETag` on reads, a required `If-Match` on writes.

A client reads a resource, gets its ETag, and sends it back in `If-Match` with its change; if someone
else changed the resource in between the tags differ and the change is refused (412), so no update is
silently lost. Sending no `If-Match` at all is refused too (428, RFC 6585 §3).
"""

from __future__ import annotations

from .problems import Problem


def _listed_tags(if_match: str) -> set[str]:
    return {tag.strip() for tag in if_match.split(",") if tag.strip()}


def check_if_match(if_match: str | None, current_etag: str, *, already_applied: bool = False) -> None:
    """Raise 428 without `If-Match`, 412 when it names none of the current tag (or `*`).

    Tags are compared strongly (RFC 9110 §13.1.1), so a weak `W/"…"` tag never matches. `already_applied`:
    the resource already is what the request asks for — typically the retry of a request that succeeded,
    whose tag is stale by its own doing — and RFC 9110 §13.1.1 lets the server answer 2xx instead of 412.
    """
    if if_match is None:
        raise Problem(428, "This update needs an `If-Match` header: read the resource first, then send its `ETag` with your change.")
    tags = _listed_tags(if_match)
    if already_applied or "*" in tags or current_etag in tags:
        return
    raise Problem(412, f"The resource changed since you read it ({if_match} is not its current ETag). "
                       "Read it again, reapply your change and send it with the new ETag.")
