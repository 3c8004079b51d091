"""The register of data returns."""

# The dataset type of a data return (schemas/data_return.yaml).
RETURN_TYPE = "data-return"
