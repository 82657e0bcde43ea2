"""The pricing engine (`models`, `parse`, `rating`): pure functions, Decimal in, Decimal out. No database, no Django models.

Three layers:

1. **Price types** (frozen dataclasses): `FlatPrice`, `UnitPrice`, `TieredPrice` (graduated or volume),
   `PackagePrice`, `DynamicPrice`, `PercentagePrice`, plus `Discounts` and `Commitments`.
2. **Parsing** (`parse_price`, `parse_discounts`, `parse_commitments`) from the OpenMeter-shaped JSON
   (amounts are decimal strings; floats are rejected) with every problem reported under its full path,
   e.g. `price.tiers[2].upToAmount`. `price_to_json` is the inverse (canonical strings).
3. **Rating**: one function per price type (`rate_flat`, `rate_unit`, `rate_graduated`, `rate_volume`,
   `rate_package`, `rate_dynamic`, `rate_percentage`), each returning a `Rating` (the unrounded amount
   and the detail lines that explain it), and `rate(...)`, which picks the function, applies the usage
   discount (first N units free) before it and the percentage discount, minimum top-up and maximum cap
   after it. `price_total(rating, currency)` rounds once, half up, via `core.money.quantize`.

Semantics (see docs/catalog.md):
- `upToAmount` is inclusive: tier i covers (previous upToAmount, upToAmount]. The last tier is open-ended.
- A tier is *reached* when the quantity is greater than the previous tier's bound (tier 0: quantity > 0).
  Graduated: every reached tier's flat price is charged once, and each tier's unit price applies to the
  units inside it. Volume: all units are priced at the unit price of the tier the total falls in, plus
  that tier's flat price. Quantity 0 reaches no tier and costs 0 (before a minimum commitment).
- Package: ceil(quantity / quantityPerPackage) packages (partial packages round up).
- Dynamic: quantity is a money amount (e.g. provider cost); amount = quantity x multiplier.
- Percentage: quantity is a transaction volume; amount = volume x percentage / 100 plus
  fixedAmountPerEvent x event count.
- Order of adjustments: usage discount (quantity) -> price -> percentage discount -> minimum top-up ->
  maximum cap. Commitments compare against the discounted amount (what the customer pays).
- The lines of a rating always sum exactly to its amount.
"""

from __future__ import annotations

# The package's names are its modules' public names (each module lists them in `__all__`).
from catalog.pricing.models import *  # noqa: F403
from catalog.pricing.parse import *  # noqa: F403
from catalog.pricing.rating import *  # noqa: F403
