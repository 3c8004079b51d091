"""Our own tables. Created by alembic migrations (migration/lgdp/), applied by
`ckan db init` / `ckan db upgrade`; never at load time. Ids of core objects are
stored as text, with no foreign keys into core tables."""
from ckanext.lgdp.model.audit import AuditEntry
from ckanext.lgdp.model.connectors import Connector, ConnectorRun
from ckanext.lgdp.model.consolidation import Consolidation
from ckanext.lgdp.model.dashboards import SavedDashboard
from ckanext.lgdp.model.pubsub import Delivery, Event, Subscription
from ckanext.lgdp.model.qa import QAFlag
from ckanext.lgdp.model.standards import StandardVersion
from ckanext.lgdp.model.submission_state import SearchPending, SubmissionState
from ckanext.lgdp.model.upload_keys import UploadKey
from ckanext.lgdp.model.uploads import Upload

__all__ = ["AuditEntry", "Connector", "ConnectorRun", "Consolidation", "Delivery", "Event", "QAFlag", "SavedDashboard", "SearchPending", "StandardVersion", "Subscription", "SubmissionState", "Upload", "UploadKey"]
