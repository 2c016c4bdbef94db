"""A FHIR R4 view of a referral, for health systems such as SATUSEHAT."""
