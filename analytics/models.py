"""Analytics models: pricing simulation runs (the dashboards read the other apps' data and store nothing).

`SimulationRun` moved here from the portal (migrations `portal.0003` and `analytics.0001` move the state,
`analytics.0002` renames the table)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from core.models import TenantModel


class SimulationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class SimulationRun(TenantModel):
    """A pricing simulation: a (draft) plan version applied to customers' real usage over a past period,
    compared with what they were invoiced. Computed by `analytics.services.simulation_run_execute`."""

    plan_key = models.CharField(max_length=256)
    plan_version = models.PositiveIntegerField()
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    customer_ids = ArrayField(models.CharField(max_length=26), default=list, blank=True)
    all_on_plan = models.CharField(
        max_length=256, blank=True, default="", help_text="Plan key whose current customers are simulated."
    )
    status = models.CharField(
        max_length=10, choices=SimulationStatus.choices, default=SimulationStatus.PENDING
    )
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    currency = models.CharField(max_length=3, blank=True, default="")
    results = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self) -> str:
        return f"simulation {self.plan_key} v{self.plan_version} ({self.status})"

    @property
    def percent(self) -> int:
        if self.status == SimulationStatus.DONE:
            return 100
        return int(self.done * 100 / self.total) if self.total else 0
