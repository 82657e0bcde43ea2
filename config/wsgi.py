import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
# Load every view now rather than at the first request, then move all that loading made (modules, models,
# URL patterns, serializers: they live as long as the process) out of the cycle collector's reach, so a
# full collection walks only what requests create (docs/metering.md, "Accepting a batch").
get_resolver().url_patterns  # noqa: B018
gc.freeze()
