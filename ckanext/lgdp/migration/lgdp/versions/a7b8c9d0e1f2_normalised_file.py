"""The normalised file of an upload: its hash, size, rows and header.

Revision ID: a7b8c9d0e1f2
Revises: f6a7b8c9d0e1
Create Date: 2026-12-02 02:00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

revision = "a7b8c9d0e1f2"
down_revision = "f6a7b8c9d0e1"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("lgdp_upload", sa.Column("normal_sha256", sa.UnicodeText))
    op.add_column("lgdp_upload", sa.Column("normal_bytes", sa.BigInteger))
    op.add_column("lgdp_upload", sa.Column("normal_rows", sa.Integer))
    op.add_column("lgdp_upload", sa.Column("header", JSONB))


def downgrade():
    for column in ("header", "normal_rows", "normal_bytes", "normal_sha256"):
        op.drop_column("lgdp_upload", column)
