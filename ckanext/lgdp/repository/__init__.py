"""The central repository: one consolidated table per return series."""

# The dataset type holding the consolidated table of a return series.
TABLE_TYPE = "return-table"
