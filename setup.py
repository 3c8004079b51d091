# -*- coding: utf-8 -*-
from setuptools import find_packages, setup

setup(
    name="ckanext-lgdp",
    version="0.1.0",
    description="Local Government Data Platform: data returns register, "
    "collection, validation and benchmarking for Scotland's councils",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="AGPL-3.0-or-later",
    python_requires=">=3.11",
    packages=find_packages(include=["ckanext", "ckanext.*"]),
    namespace_packages=["ckanext"],
    include_package_data=True,
    zip_safe=False,
    install_requires=[
        # exact pins live in requirements.txt (installed in one pip call)
        "ckanext-scheming",
        "ckanext-validation",
        "ckantoolkit",
        "tableschema",
        # fastcsv.py relies on frictionless internals: the minor release it is
        # tested against
        "frictionless>=5.18,<5.19",
        "ckanext-dcat",
        "pandas>=3.1,<3.2",
        "openpyxl>=3.1.5,<3.2",
    ],
    entry_points="""
        [ckan.plugins]
        lgdp = ckanext.lgdp.plugin:LgdpPlugin
        lgdp_validation = ckanext.lgdp.validation_compat.plugin:ValidationCompatPlugin

        [babel.extractors]
        ckan = ckan.lib.extract:extract_ckan
    """,
    message_extractors={
        "ckanext": [
            ("**.py", "python", None),
            ("**.js", "javascript", None),
            ("**/templates/**.html", "ckan", None),
            ("**/templates/**.atom", "ckan", None),
        ],
    },
)
