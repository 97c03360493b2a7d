"""Who may call what: the roles each kind of request needs.

District and zone staff (`district`, `admin`) run the catalog and decide orders; a school's team
(`school`) orders for its own schools; the board reads; a `partner` token sees the catalog and the
orders of its own services only; `sis` tokens push data and read nothing here.
"""

from __future__ import annotations

from typing import Annotated

from ezone_kit.auth import Principal, require_roles
from fastapi import Depends

STAFF_ROLES = frozenset({"district", "admin"})  # they also see drafts and retired services
OVERSEER_ROLES = frozenset({"board", "district", "admin"})  # they see every school's orders and outcomes

Staff = Annotated[Principal, Depends(require_roles("district", "admin"))]
SchoolTeam = Annotated[Principal, Depends(require_roles("school"))]
CatalogReader = Annotated[Principal, Depends(require_roles("school", "board", "district", "admin", "partner"))]
SchoolReader = Annotated[Principal, Depends(require_roles("school", "board", "district", "admin"))]
