"""Metering models: meters, the raw event store, rejected events, rollups and their watermarks.

The raw event table (`Event`) is only ever written and read through `metering.store`; no other
module touches it, so a ClickHouse (or partitioned/Citus) backend can replace that one module.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from core.models import Organization, TenantModel, unique_while_live


class NumericField(models.Field):
    """Unconstrained PostgreSQL `numeric`: exact, any scale (sums of arbitrary decimals stay exact)."""

    description = "Arbitrary-precision numeric"

    def db_type(self, connection) -> str:
        return "numeric"

    def get_internal_type(self) -> str:
        return "NumericField"


class Aggregation(models.TextChoices):
    SUM = "SUM"
    COUNT = "COUNT"
    UNIQUE_COUNT = "UNIQUE_COUNT"
    AVG = "AVG"
    MIN = "MIN"
    MAX = "MAX"
    LATEST = "LATEST"


def organization_unconstrained() -> models.ForeignKey:
    """The organization of a row on the ingest and rollup paths: no FK constraint (no per-row RI trigger
    on bulk writes) and no index of its own (each table's indexes lead with it, but the dedup keys', which
    are found through their events); organizations are deleted through `metering.store.events_purge`."""
    return models.ForeignKey(
        Organization, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )


class Meter(TenantModel):
    """An OpenMeter-style meter: which events count (eventType), how (aggregation of valueProperty),
    broken down by which dimensions (groupBy: {dimension: JSONPath})."""

    slug = models.CharField(max_length=63)
    name = models.CharField(max_length=200, blank=True, default="")
    description = models.TextField(blank=True, default="")
    event_type = models.CharField(max_length=255)
    aggregation = models.CharField(max_length=16, choices=Aggregation.choices)
    value_property = models.CharField(max_length=255, blank=True, default="")  # "" = none (COUNT)
    group_by = models.JSONField(default=dict, blank=True)
    event_from = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["slug"]
        constraints = [unique_while_live("slug", name="meter_slug_unique_live")]
        indexes = [models.Index(fields=["organization", "event_type"])]

    def __str__(self) -> str:
        return self.slug

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class Event(models.Model):
    """One accepted CloudEvent. Append-only; high volume.

    - The table is partitioned by event month (`time`, UTC) with a default partition
      (migration 0005, `metering.store.partitions`); it has no primary key in the database (a unique
      index on a partitioned table must contain the partition key).
    - `seq` is the ingestion order (a sequence drawn in acceptance order); rollups advance by it, never
      by event time. Index (organization, seq) serves the rollups, the fresh tail and the event log.
    - Dedup: `EventKey` (not partitioned) holds one row per stored event; its primary key
      (organization, source, event_id) is the dedup key, kept for as long as the event is retained.
    - `organization` has no FK constraint (no per-row RI trigger on the bulk path); organizations
      are deleted through `metering.store.events_purge`.
    """

    seq = models.BigAutoField(primary_key=True)
    organization = organization_unconstrained()
    source = models.TextField()
    event_id = models.TextField()
    type = models.TextField()
    subject = models.TextField()
    time = models.DateTimeField()
    data = models.JSONField(null=True)
    stored_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["organization", "type", "subject", "time"], name="metering_event_query"),
            models.Index(fields=["organization", "seq"], name="metering_event_org_seq"),
        ]

    def __str__(self) -> str:
        return f"{self.source}/{self.event_id}"


class EventKey(models.Model):
    """The dedup key of every stored event: (event_id, source, organization) is the primary key of this
    unpartitioned table, so dedup stays exact whatever the event's month; `seq` and `time` find the
    stored event, `payload_hash` tells an identical resend from a conflict without reading it. Written
    and deleted with the event, by `metering.store` only.

    The key's index leads with the event id, in the `C` collation (byte order): nearly every comparison
    of an insert's descent is settled by the first column, compared with `memcmp`, where the organization
    first (the same 26 bytes for all of an organization's keys) and the database's collation made every
    comparison read three variable-length columns and call `strcoll` (about 13% of a drain's database CPU,
    docs/performance.md). Every lookup gives all three columns; an organization's keys are found through
    its events (`events_purge`, retention)."""

    pk = models.CompositePrimaryKey("event_id", "source", "organization")
    organization = organization_unconstrained()
    source = models.TextField(db_collation="C")
    event_id = models.TextField(db_collation="C")
    seq = models.BigIntegerField()
    time = models.DateTimeField()
    payload_hash = models.BigIntegerField(default=0)  # of (type, subject, time, data): tells conflicts apart

    def __str__(self) -> str:
        return f"{self.source}/{self.event_id}@{self.seq}"


class EventRetention(models.Model):
    """How many days an organization's raw events are kept (no row: forever). Enforced by
    `metering.retention.events_expire` (whole months past the cutoff; see docs/architecture.md)."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    days = models.PositiveIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.organization_id}: {self.days} days"


class RejectedEvent(models.Model):
    """Events we did not store as countable, with why (e.g. same id, different payload)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    source = models.TextField()
    event_id = models.TextField()
    type = models.TextField(blank=True, default="")
    subject = models.TextField(blank=True, default="")
    time = models.DateTimeField(null=True)
    data = models.JSONField(null=True)
    reason = models.CharField(max_length=64)
    detail = models.TextField(blank=True, default="")
    received_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["organization", "-received_at"], name="metering_rejected_recent")]

    def __str__(self) -> str:
        return f"{self.source}/{self.event_id}: {self.reason}"


class Rollup(models.Model):
    """Per meter, subject, group values and event-time hour: combinable partial aggregates.

    event_count (COUNT), value_count + value_sum (SUM, AVG = sum/count), value_min/value_max
    (MIN/MAX), latest_time/latest_seq/latest_value (LATEST: value at the greatest (time, seq)).
    UNIQUE_COUNT is not rolled up (distinct counts do not add across buckets): it reads raw events.
    """

    organization = organization_unconstrained()
    meter = models.ForeignKey(Meter, on_delete=models.CASCADE, related_name="+")
    subject = models.TextField()
    group_values = models.JSONField(default=dict)
    bucket = models.DateTimeField()
    event_count = models.BigIntegerField(default=0)
    value_count = models.BigIntegerField(default=0)
    value_sum = NumericField(null=True)
    value_min = NumericField(null=True)
    value_max = NumericField(null=True)
    latest_time = models.DateTimeField(null=True)
    latest_seq = models.BigIntegerField(null=True)
    latest_value = NumericField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "meter", "subject", "bucket", "group_values"],
                name="metering_rollup_key",
            )
        ]
        indexes = [models.Index(fields=["organization", "meter", "bucket"], name="metering_rollup_time")]

    def __str__(self) -> str:
        return f"{self.meter_id} {self.subject} {self.bucket:%Y-%m-%dT%H}"


class RollupState(models.Model):
    """The watermark: every event with seq <= watermark is included in this meter's rollups."""

    meter = models.OneToOneField(Meter, on_delete=models.CASCADE, primary_key=True, related_name="+")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    watermark = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.meter_id}@{self.watermark}"


class InboxBatch(models.Model):
    """One accepted ingest request, kept as received until the drain moves its events into `Event`.

    `body` is the request's JSON array of validated CloudEvents (a single event is wrapped in `[...]`),
    stored uncompressed and unparsed so that accepting a batch costs one row write. The drain
    (`metering.store.inbox_drain`) parses it in PostgreSQL, dedups into `Event` in acceptance order and
    deletes the row in the same transaction. A row PostgreSQL cannot parse is kept with `failed_at` and
    `error` (never silently dropped) and skipped by later drains.

    Background drainers work in `lanes` (fixed when the batch is accepted): lane j stores the events whose
    dedup key hashes to j, so several drainers store one organization's batches side by side while each
    key keeps one writer; `lanes_done` has bit j set once lane j's share is stored, and the row is deleted
    when every lane's bit is set (`metering.store.inbox`). With more than one lane the body is split when
    accepted: one JSON array per lane, back to back, `lane_ends` the byte offset where each ends, so each
    lane parses only its own events (NULL: one array, as received).
    """

    id = models.BigAutoField(primary_key=True)
    organization = organization_unconstrained()
    received_at = models.DateTimeField()
    event_count = models.IntegerField()
    body = models.BinaryField()
    failed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    lanes = models.PositiveSmallIntegerField(default=1, db_default=1)
    lanes_done = models.PositiveSmallIntegerField(default=0, db_default=0)
    lane_ends = ArrayField(models.IntegerField(), null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["organization", "id"],
                name="metering_inbox_pending",
                condition=Q(failed_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"inbox {self.id} ({self.event_count} events)"
