"""Saved dashboards.

Revision ID: f6a7b8c9d0e1
Revises: e5f6a7b8c9d0
Create Date: 2026-11-27 04:30:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

revision = "f6a7b8c9d0e1"
down_revision = "e5f6a7b8c9d0"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "lgdp_dashboard",
        sa.Column("id", sa.UnicodeText, primary_key=True),
        sa.Column("title", sa.UnicodeText, nullable=False),
        sa.Column("owner_user_id", sa.UnicodeText, index=True),
        sa.Column("owner_org_id", sa.UnicodeText, index=True),
        sa.Column("indicators", JSONB, nullable=False, server_default="[]"),
        sa.Column("council_gss", sa.UnicodeText),
        sa.Column("period_from", sa.UnicodeText),
        sa.Column("period_to", sa.UnicodeText),
        sa.Column("created_by", sa.UnicodeText, nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("modified", sa.DateTime, nullable=False),
        sa.CheckConstraint("(owner_user_id IS NULL) <> (owner_org_id IS NULL)", name="lgdp_dashboard_one_owner"),
    )


def downgrade():
    op.drop_table("lgdp_dashboard")
