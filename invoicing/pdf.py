"""Invoice PDF, generated in-process with fpdf2 (pure Python; see the note in pyproject.toml on why not
WeasyPrint: it needs the system Pango libraries, which a fresh machine does not have)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fpdf import FPDF

from core.money import format_money
from invoicing import display
from invoicing.models import CreditNote, Invoice
from invoicing.services.lifecycle import customer_snapshot, supplier_snapshot

INK = (33, 37, 41)
MUTED = (108, 117, 125)
RULE = (222, 226, 230)
ACCENT = (32, 80, 160)
_TRANSLATE = str.maketrans(
    {"–": "-", "—": "-", "→": "->", "’": "'", "“": '"', "”": '"', "…": "...", "≤": "<="}
)


def _t(text: Any) -> str:
    """Core PDF fonts are Latin-1: map the few typographic characters we use, drop the rest."""
    return (
        str(text if text is not None else "")
        .translate(_TRANSLATE)
        .encode("latin-1", "replace")
        .decode("latin-1")
    )


def _d(value: datetime | None) -> str:
    return value.strftime("%d %b %Y") if value else "-"


def _end(value: datetime | None) -> str:
    """Periods are half-open [start, end): print the last day they cover."""
    return _d(value - timedelta(microseconds=1)) if value else "-"


def _address(data: dict[str, Any] | None) -> list[str]:
    if not data:
        return []
    city = " ".join(x for x in [data.get("postalCode"), data.get("city")] if x)
    return [
        x for x in [data.get("line1"), data.get("line2"), city, data.get("state"), data.get("country")] if x
    ]


def invoice_pdf(invoice: Invoice) -> bytes:
    return _document_pdf(invoice, None)


def credit_note_pdf(note: CreditNote) -> bytes:
    """The credit note: the voided invoice's parties and lines, every amount credited (negative)."""
    return _document_pdf(note.invoice, note)


def _document_pdf(invoice: Invoice, note: CreditNote | None) -> bytes:
    supplier = invoice.supplier_snapshot or supplier_snapshot(invoice.organization)
    customer = invoice.customer_snapshot or customer_snapshot(invoice.customer)
    cur = invoice.currency
    sign = -1 if note is not None else 1  # a credit note credits every amount of the invoice
    money = lambda v: _t(format_money(sign * v, cur))  # noqa: E731

    pdf = FPDF(format="A4", unit="mm")
    pdf.set_auto_page_break(auto=True, margin=22)
    pdf.set_margins(18, 18, 18)
    pdf.add_page()
    pdf.set_title(f"Credit note {note.number}" if note else f"Invoice {invoice.number or invoice.id}")
    width = pdf.w - 36

    # header: supplier left, INVOICE right
    pdf.set_text_color(*ACCENT)
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(width / 2, 9, _t(supplier.get("name")), new_x="RIGHT", new_y="TOP")
    pdf.set_text_color(*INK)
    pdf.set_font("Helvetica", "B", 22)
    title = "INVOICE" if invoice.status not in ("draft", "gathering") else f"{invoice.status.upper()} INVOICE"
    if note is not None:
        title = "CREDIT NOTE"
    pdf.cell(width / 2, 9, title, align="R", new_x="LMARGIN", new_y="NEXT")
    top = pdf.get_y() + 2
    pdf.set_font("Helvetica", "", 9)
    pdf.set_text_color(*MUTED)
    pdf.set_xy(18, top)
    for line in [
        *str(supplier.get("address") or "").splitlines(),
        supplier.get("email"),
        f"Tax ID: {supplier['taxId']}" if supplier.get("taxId") else "",
    ]:
        if line:
            pdf.cell(width / 2, 4.6, _t(line), new_x="LMARGIN", new_y="NEXT")
    left_end = pdf.get_y()
    meta = [
        ("Invoice number", invoice.number or "(assigned on issue)"),
        ("Issue date", _d(invoice.issued_at)),
        ("Due date", _d(invoice.due_at)),
        ("Billing period", f"{_d(invoice.period_start)} - {_end(invoice.period_end)}"),
        ("Status", invoice.status.replace("_", " ").title()),
    ]
    if note is not None:
        meta = [
            ("Credit note number", note.number),
            ("Issue date", _d(note.issued_at)),
            ("Credits invoice", invoice.number),
            ("Invoice date", _d(invoice.issued_at)),
            ("Billing period", f"{_d(invoice.period_start)} - {_end(invoice.period_end)}"),
        ]
    y = top
    for label, value in meta:
        pdf.set_xy(18 + width / 2, y)
        pdf.set_text_color(*MUTED)
        pdf.set_font("Helvetica", "", 9)
        pdf.cell(width / 4, 4.6, _t(label), align="R")
        pdf.set_text_color(*INK)
        pdf.set_font("Helvetica", "B", 9)
        pdf.cell(width / 4, 4.6, _t(value), align="R")
        y += 4.6
    pdf.set_y(max(left_end, y) + 6)

    # bill to
    pdf.set_draw_color(*RULE)
    pdf.line(18, pdf.get_y(), 18 + width, pdf.get_y())
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 8)
    pdf.set_text_color(*MUTED)
    pdf.cell(width, 4.5, "BILL TO", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(*INK)
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(width, 5.5, _t(customer.get("name")), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    tax_ids = customer.get("taxIds") or []
    for line in [
        *_address(customer.get("billingAddress")),
        customer.get("email"),
        *[f"Tax ID: {t.get('value', t) if isinstance(t, dict) else t}" for t in tax_ids],
    ]:
        if line:
            pdf.cell(width, 4.6, _t(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)

    # lines table
    cols = [width * 0.44, width * 0.18, width * 0.11, width * 0.12, width * 0.15]
    heads = ["Description", "Service period", "Qty", "Unit price", "Amount"]
    pdf.set_fill_color(243, 245, 248)
    pdf.set_font("Helvetica", "B", 8.5)
    pdf.set_text_color(*MUTED)
    for w, h in zip(cols, heads, strict=True):
        pdf.cell(w, 7, h.upper(), fill=True, align="L" if h in ("Description", "Service period") else "R")
    pdf.ln(7)
    body = [x for x in invoice.lines.all() if x.type != "tax"]
    taxes = [x for x in invoice.lines.all() if x.type == "tax"]
    for line in body:
        pdf.set_text_color(*INK)
        pdf.set_font("Helvetica", "", 9)
        period = (
            f"{_d(line.period_start)[:6]} - {_end(line.period_end)[:6]}"
            if line.period_start and line.period_end
            else ""
        )
        pdf.cell(cols[0], 6, _t(line.description)[:62])
        pdf.set_text_color(*MUTED)
        pdf.cell(cols[1], 6, _t(period))
        pdf.set_text_color(*INK)
        pdf.cell(cols[2], 6, display.quantity(line.quantity), align="R")
        # unit prices keep their precision (0.0000025 is not 0.00); amounts are rounded
        pdf.cell(cols[3], 6, _t(display.unit_price(line.unit_price, cur)), align="R")
        pdf.cell(cols[4], 6, money(line.amount), align="R")
        pdf.ln(6)
        pdf.set_font("Helvetica", "", 7.5)
        pdf.set_text_color(*MUTED)
        for d in display.detail_rows(line, cur):  # tiers and packages, 0.00 sub-lines left out
            pdf.cell(cols[0] + cols[1], 4.4, _t(f"    {d.description}")[:90])
            pdf.cell(cols[2], 4.4, _t(d.quantity), align="R")
            pdf.cell(cols[3], 4.4, _t(d.unit_price), align="R")
            pdf.cell(cols[4], 4.4, _t(d.amount), align="R")
            pdf.ln(4.4)
        pdf.set_draw_color(*RULE)
        pdf.line(18, pdf.get_y() + 0.8, 18 + width, pdf.get_y() + 0.8)
        pdf.ln(1.6)

    # totals
    pdf.ln(3)
    label_w, value_w = width * 0.3, width * 0.2
    x0 = 18 + width - label_w - value_w

    def total_row(label: str, value: str, *, bold: bool = False, size: float = 9.5) -> None:
        pdf.set_x(x0)
        pdf.set_font("Helvetica", "B" if bold else "", size)
        pdf.set_text_color(*(INK if bold else MUTED))
        pdf.cell(label_w, 6.2, _t(label))
        pdf.set_text_color(*INK)
        pdf.cell(value_w, 6.2, _t(value), align="R", new_x="LMARGIN", new_y="NEXT")

    total_row("Subtotal", money(invoice.amount))
    if invoice.discounts_total:
        total_row("Discounts", money(-invoice.discounts_total))
    for tax in taxes:
        total_row(tax.description, money(tax.amount))
    if invoice.credits_total:
        total_row("Credits applied", money(-invoice.credits_total))
    pdf.set_draw_color(*INK)
    pdf.line(x0, pdf.get_y() + 0.5, 18 + width, pdf.get_y() + 0.5)
    pdf.ln(1.5)
    total_row(
        f"Total credited ({cur})" if note else f"Total due ({cur})", money(invoice.total), bold=True, size=12
    )

    # footer notes
    pdf.ln(8)
    pdf.set_font("Helvetica", "", 8.5)
    pdf.set_text_color(*MUTED)
    notes = []
    if note is not None:
        notes.append(f"This credit note cancels invoice {invoice.number} in full: nothing is due on it.")
        if note.reason:
            notes.append(f"Reason: {note.reason}")
    elif invoice.due_at:
        notes.append(f"Please pay {money(invoice.total)} by {_d(invoice.due_at)}, quoting {invoice.number}.")
    if supplier.get("paymentInstructions"):
        notes.append(supplier["paymentInstructions"])
    if invoice.stripe_hosted_url and note is None:
        notes.append(f"Pay online: {invoice.stripe_hosted_url}")
    if supplier.get("email"):
        notes.append(f"Questions about this invoice? Write to {supplier['email']}.")
    for text in notes:
        pdf.multi_cell(width, 4.6, _t(text), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
