"""Console pages of invoicing, one module per page: `invoices` (list, detail, PDFs), `invoice_ops` (one
view per operation on an invoice: advance, approve, void, retry the Stripe push, mark paid), `runs`
(invoice runs and retry), `webhooks` (endpoints, delivery log, resend), `billing_settings` (supplier,
Stripe, invoice terms, tax rates) and `customer_sections` (the customer page's invoicing sections).
`invoicing.urls` routes to them."""
