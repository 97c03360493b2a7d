"""Who has preferences and endpoints of their own: the zone's people, not its systems (sis) or partners."""

from __future__ import annotations

from typing import Annotated

from ezone_kit.auth import Principal
from ezone_kit.problems import Problem
from fastapi import Depends

from ..session import MemberPrincipal

MEMBER_ROLES = ("board", "school", "district", "admin")
ZONE_STAFF_ROLES = frozenset({"district", "admin"})  # they manage the zone's own endpoints


async def _member(principal: MemberPrincipal) -> Principal:
    if principal.role not in MEMBER_ROLES:
        raise Problem(403, f"Alert preferences and webhooks belong to the zone's members ({', '.join(MEMBER_ROLES)}); "
                           f"your token's role is {principal.role}.")
    return principal


Member = Annotated[Principal, Depends(_member)]
