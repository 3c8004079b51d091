"""A submission's state in the platform's own table, and the datasets whose
search document is to be refreshed. The state that existing submissions kept
as dataset fields (package_extra) moves over, and those fields go.

Revision ID: d0e1f2a3b4c5
Revises: c9d0e1f2a3b4
Create Date: 2026-12-03 17:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = "d0e1f2a3b4c5"
down_revision = "c9d0e1f2a3b4"
branch_labels = None
depends_on = None

MOVED = ("submission_status", "round", "standard_version", "current_upload", "submitted_upload",
         "accepted_upload", "signed_off_by", "signed_off_at", "submitted_at", "decided_by", "decided_at",
         "return_reason", "late")


def upgrade():
    op.create_table(
        "lgdp_submission_state",
        sa.Column("submission_id", sa.UnicodeText, primary_key=True),
        sa.Column("status", sa.UnicodeText, nullable=False, server_default="expected"),
        sa.Column("round", sa.Integer, nullable=False, server_default="1"),
        sa.Column("standard_version", sa.Integer),
        sa.Column("current_upload", sa.UnicodeText),
        sa.Column("submitted_upload", sa.UnicodeText),
        sa.Column("accepted_upload", sa.UnicodeText),
        sa.Column("signed_off_by", sa.UnicodeText),
        sa.Column("signed_off_at", sa.DateTime),
        sa.Column("submitted_at", sa.DateTime),
        sa.Column("decided_by", sa.UnicodeText),
        sa.Column("decided_at", sa.DateTime),
        sa.Column("return_reason", sa.UnicodeText),
        sa.Column("late", sa.Boolean),
        sa.Column("updated_at", sa.DateTime, nullable=False, server_default=sa.text("(now() at time zone 'utc')")),
    )
    op.create_index("ix_lgdp_submission_state_status", "lgdp_submission_state", ["status"])
    op.create_index("ix_lgdp_submission_state_accepted_upload", "lgdp_submission_state", ["accepted_upload"])
    op.create_table(
        "lgdp_search_pending",
        sa.Column("package_id", sa.UnicodeText, primary_key=True),
        sa.Column("marked_at", sa.DateTime, nullable=False),
    )
    # the state existing submissions kept as dataset fields ('' was unset)
    op.execute("""
        INSERT INTO lgdp_submission_state (submission_id, status, round, standard_version, current_upload,
            submitted_upload, accepted_upload, signed_off_by, signed_off_at, submitted_at, decided_by,
            decided_at, return_reason, late, updated_at)
        SELECT p.id,
               COALESCE(NULLIF(x.e ->> 'submission_status', ''), 'expected'),
               COALESCE(NULLIF(x.e ->> 'round', '')::int, 1),
               NULLIF(x.e ->> 'standard_version', '')::int,
               NULLIF(x.e ->> 'current_upload', ''),
               NULLIF(x.e ->> 'submitted_upload', ''),
               NULLIF(x.e ->> 'accepted_upload', ''),
               NULLIF(x.e ->> 'signed_off_by', ''),
               NULLIF(x.e ->> 'signed_off_at', '')::timestamp,
               NULLIF(x.e ->> 'submitted_at', '')::timestamp,
               NULLIF(x.e ->> 'decided_by', ''),
               NULLIF(x.e ->> 'decided_at', '')::timestamp,
               NULLIF(x.e ->> 'return_reason', ''),
               CASE x.e ->> 'late' WHEN 'yes' THEN true WHEN 'no' THEN false END,
               now() at time zone 'utc'
          FROM package p
          LEFT JOIN LATERAL (
              SELECT json_object_agg(pe.key, pe.value) AS e FROM package_extra pe
               WHERE pe.package_id = p.id AND pe.state = 'active'
          ) x ON true
         WHERE p.type = 'submission'
    """)
    op.execute(sa.text("DELETE FROM package_extra WHERE key = ANY(:keys) AND package_id IN "
                       "(SELECT id FROM package WHERE type = 'submission')").bindparams(keys=list(MOVED)))


def downgrade():
    # the state goes back to the datasets' fields, as they held it
    op.execute("""
        INSERT INTO package_extra (id, package_id, key, value, state)
        SELECT md5(random()::text || s.submission_id || f.key), s.submission_id, f.key, f.value, 'active'
          FROM lgdp_submission_state s
          CROSS JOIN LATERAL (VALUES
              ('submission_status', s.status),
              ('round', s.round::text),
              ('standard_version', COALESCE(s.standard_version::text, '')),
              ('current_upload', COALESCE(s.current_upload, '')),
              ('submitted_upload', COALESCE(s.submitted_upload, '')),
              ('accepted_upload', COALESCE(s.accepted_upload, '')),
              ('signed_off_by', COALESCE(s.signed_off_by, '')),
              ('signed_off_at', COALESCE(to_char(s.signed_off_at, 'YYYY-MM-DD"T"HH24:MI:SS'), '')),
              ('submitted_at', COALESCE(to_char(s.submitted_at, 'YYYY-MM-DD"T"HH24:MI:SS'), '')),
              ('decided_by', COALESCE(s.decided_by, '')),
              ('decided_at', COALESCE(to_char(s.decided_at, 'YYYY-MM-DD"T"HH24:MI:SS'), '')),
              ('return_reason', COALESCE(s.return_reason, '')),
              ('late', CASE s.late WHEN true THEN 'yes' WHEN false THEN 'no' ELSE '' END)
          ) AS f(key, value)
         WHERE f.value <> ''
    """)
    op.drop_table("lgdp_search_pending")
    op.drop_index("ix_lgdp_submission_state_accepted_upload", "lgdp_submission_state")
    op.drop_index("ix_lgdp_submission_state_status", "lgdp_submission_state")
    op.drop_table("lgdp_submission_state")
