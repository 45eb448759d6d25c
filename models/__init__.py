"""The domain store: SQLAlchemy 2.0 models, one module per aggregate. Imports nothing above it."""

from models.base import Base
from models.casework import (
    Case,
    CaseLink,
    Device,
    Job,
    JobAllowedExaminer,
    JobCapability,
    JobLicencePool,
    JobPredecessor,
    JobSkill,
    JobWorkstationMinutes,
    TriageFlag,
)
from models.lab import Lab, LabTerm, PriorityLevel
from models.resources import (
    Absence,
    Examiner,
    ExaminerSkill,
    ExposureLog,
    LicencePool,
    MaintenanceWindow,
    Shift,
    Workstation,
    WorkstationCapability,
)
from models.schedule import (
    Assignment,
    ForecastEntry,
    ScheduleVersion,
    SolveRun,
    SolveRunAttempt,
    UnscheduledJob,
)
from models.security import ApiKey, AuditEvent, ConsoleSession, FeedToken
from models.webhooks import WebhookDelivery, WebhookEvent, WebhookSubscription

__all__ = [
    "Absence",
    "ApiKey",
    "Assignment",
    "AuditEvent",
    "Base",
    "Case",
    "CaseLink",
    "ConsoleSession",
    "Device",
    "Examiner",
    "ExaminerSkill",
    "ExposureLog",
    "FeedToken",
    "ForecastEntry",
    "Job",
    "JobAllowedExaminer",
    "JobCapability",
    "JobLicencePool",
    "JobPredecessor",
    "JobSkill",
    "JobWorkstationMinutes",
    "Lab",
    "LabTerm",
    "LicencePool",
    "MaintenanceWindow",
    "PriorityLevel",
    "ScheduleVersion",
    "Shift",
    "SolveRun",
    "SolveRunAttempt",
    "TriageFlag",
    "UnscheduledJob",
    "WebhookDelivery",
    "WebhookEvent",
    "WebhookSubscription",
    "Workstation",
    "WorkstationCapability",
]
