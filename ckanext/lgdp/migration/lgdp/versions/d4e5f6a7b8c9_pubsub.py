"""Publish/subscribe: events, subscriptions, deliveries.

Revision ID: d4e5f6a7b8c9
Revises: c3d4e5f6a7b8
Create Date: 2026-11-27 02:30:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

revision = "d4e5f6a7b8c9"
down_revision = "c3d4e5f6a7b8"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "lgdp_event",
        sa.Column("id", sa.UnicodeText, primary_key=True),
        sa.Column("type", sa.UnicodeText, nullable=False),
        sa.Column("return_id", sa.UnicodeText, nullable=False, index=True),
        sa.Column("subject_kind", sa.UnicodeText, nullable=False),
        sa.Column("subject_id", sa.UnicodeText, nullable=False),
        sa.Column("council_gss", sa.UnicodeText),
        sa.Column("created", sa.DateTime, nullable=False, index=True),
        sa.Column("data", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    )
    op.create_table(
        "lgdp_subscription",
        sa.Column("id", sa.UnicodeText, primary_key=True),
        sa.Column("user_id", sa.UnicodeText, index=True),
        sa.Column("org_id", sa.UnicodeText, index=True),
        sa.Column("created_by", sa.UnicodeText, nullable=False),
        sa.Column("return_id", sa.UnicodeText, index=True),
        sa.Column("event_types", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("channel", sa.UnicodeText, nullable=False),
        sa.Column("url", sa.UnicodeText),
        sa.Column("secret", sa.UnicodeText),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created", sa.DateTime, nullable=False),
    )
    op.create_table(
        "lgdp_delivery",
        sa.Column("id", sa.UnicodeText, primary_key=True),
        sa.Column("subscription_id", sa.UnicodeText, nullable=False, index=True),
        sa.Column("event_id", sa.UnicodeText, nullable=False),
        sa.Column("status", sa.UnicodeText, nullable=False, server_default="pending", index=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime, nullable=False),
        sa.Column("last_status", sa.Integer),
        sa.Column("last_error", sa.UnicodeText),
        sa.Column("delivered_at", sa.DateTime),
        sa.UniqueConstraint("subscription_id", "event_id", name="lgdp_delivery_once"),
    )


def downgrade():
    op.drop_table("lgdp_delivery")
    op.drop_table("lgdp_subscription")
    op.drop_table("lgdp_event")
