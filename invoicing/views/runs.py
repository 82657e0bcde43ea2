"""Console page of invoice runs: progress, the failed items of each run, and retrying them."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.console import console_view
from core.http import ConsoleRequest
from core.models import Role
from invoicing import runs, selectors


@console_view()
def invoice_runs(request: ConsoleRequest) -> HttpResponse:
    org = request.organization
    run_list = list(selectors.invoice_run_list(organization=org)[:50])
    failed = {
        r.id: list(selectors.invoice_run_items(organization=org, run_id=r.id).filter(status="failed")[:20])
        for r in run_list
        if r.failed
    }
    template = "console/invoicing/runs.html#runs-table" if request.htmx else "console/invoicing/runs.html"
    return render(request, template, {"runs": run_list, "failed": failed})


@require_POST
@console_view(min_role=Role.ADMIN)
def invoice_run_retry(request: ConsoleRequest, run_id: str) -> HttpResponse:
    count = runs.invoice_run_retry_failed(organization=request.organization, run_id=run_id)
    messages.success(request, f"{count} failed item(s) queued again.")
    return redirect("invoicing_console_runs")
