"""Alembic environment of the lgdp plugin."""
from ckanext.lgdp.migration.alembic_env import run

run("lgdp")
