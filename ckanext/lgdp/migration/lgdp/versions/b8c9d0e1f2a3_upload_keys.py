"""Idempotency keys of uploads (lgdp_upload_key).

Revision ID: b8c9d0e1f2a3
Revises: a7b8c9d0e1f2
Create Date: 2026-12-05 02:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = "b8c9d0e1f2a3"
down_revision = "a7b8c9d0e1f2"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "lgdp_upload_key",
        sa.Column("user_id", sa.UnicodeText, primary_key=True),
        sa.Column("key", sa.UnicodeText, primary_key=True),
        sa.Column("submission_id", sa.UnicodeText),
        sa.Column("fingerprint", sa.UnicodeText, nullable=False),
        sa.Column("upload_id", sa.UnicodeText, index=True),
        sa.Column("created", sa.DateTime, nullable=False),
    )


def downgrade():
    op.drop_table("lgdp_upload_key")
