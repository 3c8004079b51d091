"""The audit trail and the versions of data standards.

Revision ID: a1b2c3d4e5f6
Revises:
Create Date: 2026-11-26 23:10:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

revision = "a1b2c3d4e5f6"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "lgdp_audit",
        sa.Column("id", sa.UnicodeText, primary_key=True),
        sa.Column("object_type", sa.UnicodeText, nullable=False),
        sa.Column("object_id", sa.UnicodeText, nullable=False),
        sa.Column("object_name", sa.UnicodeText),
        sa.Column("action", sa.UnicodeText, nullable=False),
        sa.Column("actor_id", sa.UnicodeText),
        sa.Column("actor_name", sa.UnicodeText),
        sa.Column("timestamp", sa.DateTime, nullable=False),
        sa.Column("from_state", sa.UnicodeText),
        sa.Column("to_state", sa.UnicodeText),
        sa.Column("reason", sa.UnicodeText),
        sa.Column("diff", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    )
    op.create_index("ix_lgdp_audit_object_id", "lgdp_audit", ["object_id"])
    op.create_index("ix_lgdp_audit_timestamp", "lgdp_audit", ["timestamp"])
    # Append-only: a row, once written, never changes. (Deleting is left to
    # the database owner, e.g. for retention; no action deletes audit rows.)
    op.execute(
        """
        CREATE OR REPLACE FUNCTION lgdp_audit_immutable() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION 'lgdp_audit rows cannot be changed';
        END;
        $$ LANGUAGE plpgsql;
        CREATE TRIGGER lgdp_audit_no_update BEFORE UPDATE ON lgdp_audit
            FOR EACH ROW EXECUTE FUNCTION lgdp_audit_immutable();
        """
    )

    op.create_table(
        "lgdp_standard_version",
        sa.Column("id", sa.UnicodeText, primary_key=True),
        sa.Column("return_id", sa.UnicodeText, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("schema", JSONB, nullable=False),
        sa.Column("changes", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.UnicodeText),
        sa.UniqueConstraint("return_id", "version", name="lgdp_standard_version_return_version"),
    )
    op.create_index("ix_lgdp_standard_version_return_id", "lgdp_standard_version", ["return_id"])


def downgrade():
    op.drop_table("lgdp_standard_version")
    op.execute("DROP TRIGGER IF EXISTS lgdp_audit_no_update ON lgdp_audit")
    op.execute("DROP FUNCTION IF EXISTS lgdp_audit_immutable()")
    op.drop_table("lgdp_audit")
