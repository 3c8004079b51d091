"""Uploads of submissions: intake, validation, queries.

Revision ID: b2c3d4e5f6a7
Revises: a1b2c3d4e5f6
Create Date: 2026-11-27 01:00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

revision = "b2c3d4e5f6a7"
down_revision = "a1b2c3d4e5f6"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "lgdp_upload",
        sa.Column("id", sa.UnicodeText, primary_key=True),
        sa.Column("submission_id", sa.UnicodeText, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("filename", sa.UnicodeText),
        sa.Column("source_url", sa.UnicodeText),
        sa.Column("uploaded_by", sa.UnicodeText),
        sa.Column("uploaded_at", sa.DateTime, nullable=False),
        sa.Column("channel", sa.UnicodeText, nullable=False, server_default="api"),
        sa.Column("status", sa.UnicodeText, nullable=False, server_default="pending"),
        sa.Column("standard_version", sa.Integer),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("job_id", sa.UnicodeText),
        sa.Column("worker", sa.UnicodeText),
        sa.Column("started_at", sa.DateTime),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("rows", sa.Integer),
        sa.Column("bytes", sa.BigInteger),
        sa.Column("sha256", sa.UnicodeText),
        sa.Column("error_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("problem_code", sa.UnicodeText),
        sa.Column("problem", sa.UnicodeText),
        sa.Column("notes", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("queries", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("summary", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.UniqueConstraint("submission_id", "version", name="lgdp_upload_submission_version"),
    )
    op.create_index("ix_lgdp_upload_submission_id", "lgdp_upload", ["submission_id"])
    op.create_index("ix_lgdp_upload_status", "lgdp_upload", ["status"])


def downgrade():
    op.drop_table("lgdp_upload")
