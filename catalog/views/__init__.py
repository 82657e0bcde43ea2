"""The no-code pricing editor (console, htmx): features (`features.py`); plans and add-ons through one set of
views (`versions.py`: list, create, settings, publish with a confirmation diff, archive, next version,
delete a draft); a plan's phases, add-on links and compare (`plans.py`); rate cards and the live preview
(`rate_cards.py`). One view per operation; each write reads a form from `catalog.forms`."""
