"""Compatibility layer that makes ckanext-validation 2.2.0 work on CKAN 2.11.

ckanext-validation 2.2.0 (the only release on PyPI) was written for CKAN 2.9.
On 2.10+ it has these defects; the plugin ``lgdp_validation`` (listed *before*
``validation`` in ``ckan.plugins``) repairs them without touching upstream code:

1. Start-up crash, "Table object 'validation' is not bound to an Engine"
   (upstream issue #118): its ``update_config`` asks SQLAlchemy whether its
   table exists, through metadata CKAN 2.10+ no longer binds to an engine.
   Fix: ``engine.bind_validation_metadata`` gives that metadata an engine
   before upstream looks, and the table itself is created by an alembic
   migration of ``lgdp_validation`` (``ckan db init``), not by
   ``ckan validation init-db`` (which crashes the same way).
2. Automatic validation never runs on resource creation: upstream implements
   pre-2.10 hook names. Fix: ``plugin.ValidationCompatPlugin`` implements the
   2.10+ hooks and starts validation through the public action
   ``resource_validation_run`` (async), always in the background; the upstream
   triggers are switched off in the configuration so nothing runs twice.
3. Sync mode with the ``activity`` plugin: an invalid upload answers HTTP 500
   because upstream deletes the resource with ``user=None``. Fix: a chained
   ``resource_delete`` supplies the site user when the caller gave none.
   The platform itself never uses sync mode (an invalid file must be kept and
   flagged, and sync mode deletes it).
4. The report page 404s for a dataset *name* in its URL. Fix: our blueprint
   answers the same URL and resolves the name first.

``tests/test_validation_compat.py`` shows each fix working and holds canaries
that fail once upstream fixes a defect, so the matching shim can be removed.
"""
