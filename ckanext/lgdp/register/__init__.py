"""The register of data returns."""

# The dataset type of a data return (ckanext/lgdp/schemas/data_return.yaml).
RETURN_TYPE = "data-return"
