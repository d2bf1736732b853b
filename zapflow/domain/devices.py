"""Which charger product a device is, from its serial prefix and Capabilities (observation 100).

Go and Go 2 both report DeviceType 4 (Apollo); the serial prefix tells them apart, and
Capabilities' `productVariant == "Go2"` overrides it (zaptec-api.md section 7.1).
"""

from __future__ import annotations

from zapflow.domain.models import ChargerModel

__all__ = ["charger_model"]

_PREFIXES: dict[str, ChargerModel] = {
    # Pro (ZCH is presumably Zaptec Home, filed under Pro by Zaptec's own table).
    "ZCS": ChargerModel.PRO,
    "ZPR": ChargerModel.PRO,
    "ZCH": ChargerModel.PRO,
    "ZPG": ChargerModel.PRO,
    "ZAP": ChargerModel.GO,
    "ZGB": ChargerModel.GO,
    "ZAG": ChargerModel.GO,
    "GPN": ChargerModel.GO2,
    "GPG": ChargerModel.GO2,
    "APH": ChargerModel.SENSE,
    "APG": ChargerModel.SENSE,
    "APM": ChargerModel.SENSE,
}


def charger_model(device_id: str | None, product_variant: str | None = None) -> ChargerModel:
    """Return the product for a DeviceId such as `ZAP049387`, refined by Capabilities."""
    if product_variant is not None and product_variant.strip().lower() == "go2":
        return ChargerModel.GO2
    if not device_id:
        return ChargerModel.UNKNOWN
    return _PREFIXES.get(device_id[:3].upper(), ChargerModel.UNKNOWN)
