"""alert rate limits: page keys and rolled-up repeats of unverified pages

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_page_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("alert_page_keys", schema=None) as batch_op:
        batch_op.create_index("ix_alert_page_keys_key_at", ["key", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_page_keys_alert_id"), ["alert_id"], unique=False)
    op.create_table(
        "alert_rollups",
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("into_alert_id", sa.Integer(), nullable=False),
        sa.Column("limited_by", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("digest_alert_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"]),
        sa.ForeignKeyConstraint(["into_alert_id"], ["alerts.id"]),
        sa.ForeignKeyConstraint(["digest_alert_id"], ["alerts.id"]),
        sa.PrimaryKeyConstraint("alert_id"),
    )
    with op.batch_alter_table("alert_rollups", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_rollups_into_alert_id"), ["into_alert_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_alert_rollups_due_at"), ["due_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_alert_rollups_digest_alert_id"), ["digest_alert_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("alert_rollups")
    op.drop_table("alert_page_keys")
