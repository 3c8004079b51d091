"""Pull connectors and their runs.

Revision ID: e5f6a7b8c9d0
Revises: d4e5f6a7b8c9
Create Date: 2026-11-27 02:40:00
"""
from alembic import op
import sqlalchemy as sa

revision = "e5f6a7b8c9d0"
down_revision = "d4e5f6a7b8c9"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "lgdp_connector",
        sa.Column("id", sa.UnicodeText, primary_key=True),
        sa.Column("council_id", sa.UnicodeText, nullable=False, index=True),
        sa.Column("return_id", sa.UnicodeText, nullable=False, index=True),
        sa.Column("url", sa.UnicodeText, nullable=False),
        sa.Column("auth_header", sa.UnicodeText),
        sa.Column("auth_secret", sa.UnicodeText),
        sa.Column("interval_minutes", sa.Integer, nullable=False, server_default="1440"),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("next_run_at", sa.DateTime, nullable=False),
        sa.Column("last_sha256", sa.UnicodeText),
        sa.Column("last_etag", sa.UnicodeText),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_by", sa.UnicodeText, nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
    )
    op.create_table(
        "lgdp_connector_run",
        sa.Column("id", sa.UnicodeText, primary_key=True),
        sa.Column("connector_id", sa.UnicodeText, nullable=False, index=True),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("outcome", sa.UnicodeText, nullable=False, server_default="running"),
        sa.Column("period", sa.UnicodeText),
        sa.Column("http_status", sa.Integer),
        sa.Column("error", sa.UnicodeText),
        sa.Column("upload_id", sa.UnicodeText),
    )


def downgrade():
    op.drop_table("lgdp_connector_run")
    op.drop_table("lgdp_connector")
