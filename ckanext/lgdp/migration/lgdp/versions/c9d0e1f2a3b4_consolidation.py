"""The consolidation of each accepted submission (lgdp_consolidation), and
when an upload's validation job was queued.

Revision ID: c9d0e1f2a3b4
Revises: b8c9d0e1f2a3
Create Date: 2026-12-02 05:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = "c9d0e1f2a3b4"
down_revision = "b8c9d0e1f2a3"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "lgdp_consolidation",
        sa.Column("submission_id", sa.UnicodeText, primary_key=True),
        sa.Column("return_id", sa.UnicodeText, nullable=False),
        sa.Column("upload_id", sa.UnicodeText, nullable=False),
        sa.Column("status", sa.UnicodeText, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("job_id", sa.UnicodeText),
        sa.Column("worker", sa.UnicodeText),
        sa.Column("enqueued_at", sa.DateTime),
        sa.Column("started_at", sa.DateTime),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("consolidated_upload", sa.UnicodeText),
        sa.Column("resource_id", sa.UnicodeText),
        sa.Column("rows", sa.Integer),
        sa.Column("consolidated_at", sa.DateTime),
        sa.Column("problem", sa.UnicodeText),
        sa.Column("updated_at", sa.DateTime, nullable=False, server_default=sa.text("(now() at time zone 'utc')")),
    )
    op.create_index("ix_lgdp_consolidation_return_id", "lgdp_consolidation", ["return_id"])
    op.create_index("ix_lgdp_consolidation_status", "lgdp_consolidation", ["status"])
    op.add_column("lgdp_upload", sa.Column("enqueued_at", sa.DateTime))


def downgrade():
    op.drop_column("lgdp_upload", "enqueued_at")
    op.drop_table("lgdp_consolidation")
