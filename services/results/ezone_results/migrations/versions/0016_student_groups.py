"""student groups as data: the deployment's group vocabulary (code, name, whether accountability uses it by default)
and the labels a state's files give each group, seeded with the ESSA groups and every group DESE publishes in its
grades 3-8 MCAS files

Revision ID: 0016
Revises: 0015
"""

from alembic import op
import sqlalchemy as sa

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# As written in their day. (code, name, accountability by default, the state files' labels, lower case.) The groups
# a new zone's policy tracks are the ones accountability uses by default; the v1 events' ten codes keep their meaning.
_SEED = (
    ("all_students", "All students", True, ("all students",)),
    ("high_needs", "High needs", True, ("high needs",)),
    ("el", "English learners", True, ("el", "english learners", "english learner")),
    ("swd", "Students with disabilities", True, ("students with disabilities", "students w/disabilities")),
    ("low_income", "Low income", True, ("low-income", "low income")),
    ("afr_american_black", "African American/Black", True,
     ("afr.american/black", "afr. amer./black", "african american/black", "black or african american")),
    ("hispanic_latino", "Hispanic/Latino", True, ("hispanic/latino", "hispanic or latino")),
    ("white", "White", False, ("white",)),
    ("asian", "Asian", False, ("asian",)),
    ("multi_race", "Multi-race, non-Hispanic/Latino", False,
     ("multi-race, non-hispanic/latino", "multi-race, non-hisp./lat.", "multi-race", "two or more races")),
    ("amer_ind_alaska_native", "American Indian or Alaska Native", False,
     ("amer. ind. or alaska nat.", "american indian or alaska native", "american indian/alaska native",
      "native american")),
    ("nat_haw_pacific_isl", "Native Hawaiian or Pacific Islander", False,
     ("nat. haw. or pacif. isl.", "native hawaiian or pacific islander", "native hawaiian/pacific islander",
      "pacific islander")),
    ("econ_disadvantaged", "Economically disadvantaged", False,
     ("econ. disadvantaged", "economically disadvantaged", "econ disadvantaged")),
    ("non_econ_disadvantaged", "Not economically disadvantaged", False,
     ("non-econ. disadvantaged", "non-economically disadvantaged")),
    ("non_low_income", "Not low income", False, ("non-low income", "non-low-income")),
    ("non_high_needs", "Not high needs", False, ("non-high needs",)),
    ("non_disabled", "Students without disabilities", False, ("non-disabled", "non disabled")),
    ("former_el", "Former English learners", False, ("former el",)),
    ("ever_el", "Ever English learners", False, ("ever el",)),
    ("el_and_former_el", "English learners and former English learners", False,
     ("el and former el", "el/former el")),
    ("non_el", "Not English learners", False, ("non-el",)),
    ("female", "Female", False, ("female",)),
    ("male", "Male", False, ("male",)),
    ("nonbinary", "Non-binary", False, ("non-binary", "nonbinary")),
    ("title_i", "Title I", False, ("title i", "title 1", "title i school")),
    ("non_title_i", "Not Title I", False, ("non-title i", "non-title 1")),
)


def upgrade() -> None:
    groups = op.create_table(
        "student_groups",
        sa.Column("code", sa.Text(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("accountability", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("added_by", sa.Text(), nullable=True),  # null: seeded with the vocabulary
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        schema="results",
    )
    labels = op.create_table(
        "student_group_labels",
        sa.Column("label", sa.Text(), primary_key=True),  # one group per label: a file's label names one group
        sa.Column("code", sa.Text(), sa.ForeignKey("results.student_groups.code"), nullable=False, index=True),
        schema="results",
    )
    op.bulk_insert(groups, [{"code": code, "name": name, "accountability": accountable}
                            for code, name, accountable, _ in _SEED])
    op.bulk_insert(labels, [{"label": label, "code": code} for code, _, _, names in _SEED for label in names])


def downgrade() -> None:
    op.drop_table("student_group_labels", schema="results")
    op.drop_table("student_groups", schema="results")
