"""The notice shown wherever a user meets model output (CLI log, summary file, demo page)."""

RESEARCH_NOTICE = (
    "Research use only: this model is not a medical device. Generated reports may be wrong, incomplete or "
    "invented and must not be used for diagnosis or patient care."
)

__all__ = ["RESEARCH_NOTICE"]
