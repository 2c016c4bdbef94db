"""Read a referral as a FHIR R4 Bundle."""

from __future__ import annotations

import uuid
from typing import Any

from service.auth.principal import Principal
from service.context import ServiceContext
from service.fhir.mapping import referral_bundle
from service.referrals import queries
from service.referrals.views import etag
from service.taxonomy import repository as taxonomy


def get_referral_bundle(
    ctx: ServiceContext, principal: Principal, referral_id: uuid.UUID
) -> tuple[dict[str, Any], str]:
    """The bundle of a referral the caller is a party to, and its ETag (404 otherwise)."""
    # The referral service decides visibility and sealing; this view only re-shapes its answer.
    referral = queries.get_referral(ctx, principal, referral_id)
    with ctx.db.reader() as session:
        names = taxonomy.agency_names(session, [referral.from_agency, referral.to_agency])
    return referral_bundle(referral, names), etag(referral)
