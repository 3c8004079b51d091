"""Alembic environment of the lgdp_validation plugin."""
from ckanext.lgdp.migration.alembic_env import run

run("lgdp_validation")
