"""Flags of the cross-council quality checks.

Revision ID: c3d4e5f6a7b8
Revises: b2c3d4e5f6a7
Create Date: 2026-11-27 01:40:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

revision = "c3d4e5f6a7b8"
down_revision = "b2c3d4e5f6a7"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "lgdp_qa_flag",
        sa.Column("id", sa.UnicodeText, primary_key=True),
        sa.Column("return_id", sa.UnicodeText, nullable=False),
        sa.Column("key", sa.UnicodeText, nullable=False),
        sa.Column("check", sa.UnicodeText, nullable=False),
        sa.Column("severity", sa.UnicodeText, nullable=False),
        sa.Column("council_gss", sa.UnicodeText),
        sa.Column("council_name", sa.UnicodeText),
        sa.Column("period", sa.UnicodeText),
        sa.Column("field", sa.UnicodeText),
        sa.Column("value", sa.Float),
        sa.Column("expected", sa.Float),
        sa.Column("reason", sa.UnicodeText, nullable=False),
        sa.Column("detail", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("status", sa.UnicodeText, nullable=False, server_default="open"),
        sa.Column("raised_at", sa.DateTime, nullable=False),
        sa.Column("last_seen_at", sa.DateTime, nullable=False),
        sa.Column("explanation", sa.UnicodeText),
        sa.Column("explained_by", sa.UnicodeText),
        sa.Column("closed_by", sa.UnicodeText),
        sa.Column("closed_at", sa.DateTime),
        sa.Column("close_note", sa.UnicodeText),
        sa.UniqueConstraint("return_id", "key", name="lgdp_qa_flag_return_key"),
    )
    op.create_index("ix_lgdp_qa_flag_return_id", "lgdp_qa_flag", ["return_id"])
    op.create_index("ix_lgdp_qa_flag_council_gss", "lgdp_qa_flag", ["council_gss"])
    op.create_index("ix_lgdp_qa_flag_period", "lgdp_qa_flag", ["period"])


def downgrade():
    op.drop_table("lgdp_qa_flag")
