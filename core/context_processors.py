from django.http import HttpRequest

from core.models import ROLE_RANK, Membership, Role
from core.navigation import items_for


def console(request: HttpRequest) -> dict:
    membership = getattr(request, "membership", None)
    if membership is None:
        return {}
    rank = ROLE_RANK[Role(membership.role)]
    return {
        "current_org": membership.organization,
        "current_membership": membership,
        "can_edit_pricing": rank >= ROLE_RANK[Role.PRICING_EDITOR],
        "can_admin": rank >= ROLE_RANK[Role.ADMIN],
        "nav_items": items_for(membership.role),
        "user_memberships": Membership.objects.filter(user=membership.user_id)
        .select_related("organization")
        .order_by("organization__name"),
    }
