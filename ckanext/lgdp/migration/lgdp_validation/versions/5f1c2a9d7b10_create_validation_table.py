"""Create the table of ckanext-validation's reports.

ckanext-validation 2.2.0 ships no migration (its `init-db` command crashes on
CKAN 2.10+), so the table its model expects is created here: the same name,
columns and types. Guarded, because a site may have made it with upstream's
command on an older CKAN.

Revision ID: 5f1c2a9d7b10
Revises:
Create Date: 2026-11-26 23:00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "5f1c2a9d7b10"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    if sa.inspect(op.get_bind()).has_table("validation"):
        return
    op.create_table(
        "validation",
        sa.Column("id", sa.UnicodeText, primary_key=True),
        sa.Column("resource_id", sa.UnicodeText),
        sa.Column("status", sa.UnicodeText),
        sa.Column("created", sa.DateTime),
        sa.Column("finished", sa.DateTime),
        sa.Column("report", postgresql.JSON),
        sa.Column("error", postgresql.JSON),
    )
    op.create_index("idx_validation_resource_id", "validation", ["resource_id"])


def downgrade():
    op.drop_table("validation")
