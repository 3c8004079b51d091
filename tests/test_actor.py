"""The reader (``access.Actor``) is worked out once per web request, and a
change to who the user is (a membership, a sysadmin flag) is seen at once;
who may move a submission on is the table of roles in submissions/auth.py."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from ckan import model
from ckan.tests.helpers import call_action

from ckanext.lgdp import access
from ckanext.lgdp.submissions import auth, states
from tests.conftest import make_user

pytestmark = [pytest.mark.usefixtures("with_plugins", "clean_db")]


class _Statements:
    """Counts the SQL statements run while it is open."""

    def __enter__(self) -> "_Statements":
        self.count = 0
        sa.event.listen(model.meta.engine, "before_cursor_execute", self._seen)
        return self

    def _seen(self, *_args) -> None:
        self.count += 1

    def __exit__(self, *_exc) -> None:
        sa.event.remove(model.meta.engine, "before_cursor_execute", self._seen)


def test_actor_is_read_once_per_request(app):
    from ckan.tests import factories

    council = factories.Organization(org_type="council", gss_code="S12000033")
    user = make_user(council, "editor")
    with app.flask_app.test_request_context():
        with _Statements() as first:
            one = access.actor(user["name"])
        with _Statements() as again:
            two = access.actor(user["name"])
        assert first.count > 0
        assert again.count == 0
        assert one is two
        assert one.in_org(council["id"], "editor")
    with app.flask_app.test_request_context():
        with _Statements() as next_request:
            access.actor(user["name"])
        assert next_request.count > 0


def test_a_changed_membership_is_seen_in_the_same_request(app):
    from ckan.tests import factories

    council = factories.Organization(org_type="council", gss_code="S12000033")
    agency = factories.Organization(org_type="agency")
    user = make_user(council, "member")
    with app.flask_app.test_request_context():
        assert not access.actor(user["name"]).in_org(council["id"], "editor")
        call_action("organization_member_create", id=council["id"], username=user["name"], role="editor")
        assert access.actor(user["name"]).in_org(council["id"], "editor")
        call_action("organization_member_create", id=agency["id"], username=user["name"], role="admin")
        assert access.actor(user["name"]).in_org(agency["id"], "admin")
        call_action("organization_member_delete", context={"user": factories.Sysadmin()["name"]},
                    id=council["id"], username=user["name"])
        assert not access.actor(user["name"]).in_org(council["id"])
        obj = model.User.get(user["name"])
        obj.sysadmin = True
        model.repo.commit()
        assert access.actor(user["name"]).sysadmin


def test_outside_a_request_every_call_reads_the_database(app):
    user = make_user()
    with _Statements() as first:
        access.actor(user["name"])
    with _Statements() as again:
        access.actor(user["name"])
    assert first.count > 0 and again.count > 0


def test_every_role_of_the_transitions_is_someone_and_has_a_name():
    used = {t.who for t in states.TRANSITIONS.values()}
    assert used <= set(auth.ROLES), used - set(auth.ROLES)
    assert set(auth.ROLES) == set(auth.ROLE_NAMES)


def test_a_role_nobody_classified_is_nobody(app):
    from ckan.tests import factories

    council = factories.Organization(org_type="council", gss_code="S12000033")
    user = make_user(council, "admin")
    sub = model.Package(name="x", type="submission", owner_org=council["id"])
    actor = access.actor(user["name"])
    assert auth.may_act(actor, states.COUNCIL_ADMIN, sub)
    assert not auth.may_act(actor, "council-cleaner", sub)
    assert auth.may_act(access.Actor(name="root", user_id="1", sysadmin=True), "council-cleaner", sub)


def test_every_value_a_transition_records_is_one_the_action_supplies():
    for transition in states.TRANSITIONS.values():
        for _field, value in transition.records:
            assert value in states.VALUES, (transition.action, value)
