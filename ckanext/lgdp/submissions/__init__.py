"""Submissions: a council's return for one reporting period, its uploads,
their validation and the states it moves through."""

SUBMISSION_TYPE = "submission"
