"""Vendor and product family from a Siemens order number (the mapping is data: products.yaml).

A site may add its own entries (same format) in ``<vendor_dir>/s7-products.yaml``
(settings ``vendor_dir``, env OTAUDIT_VENDOR_DIR): they are tried before the bundled ones.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import yaml

from otaudit.probes.base import ProbeError

PRODUCTS_FILE = Path(__file__).with_name("products.yaml")
SITE_FILE_NAME = "s7-products.yaml"

Table = tuple[list[tuple[str, str]], list[tuple[re.Pattern[str], str]]]


class ProductTableError(ProbeError):
    """A products file or entry that cannot be used; the message names file and entry."""


def _entries(path: Path) -> Table:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ProductTableError(f"{path}: {exc}") from None
    if not isinstance(data, dict) or not set(data) <= {"vendors", "products"}:
        raise ProductTableError(f"{path}: expected a mapping with 'vendors' and 'products'")
    vendors, products = [], []
    for n, entry in enumerate(data.get("vendors") or [], 1):
        if not isinstance(entry, dict) or not {"prefix", "vendor"} <= set(entry):
            raise ProductTableError(f"{path}: vendors entry {n} needs prefix and vendor")
        vendors.append((str(entry["prefix"]), str(entry["vendor"])))
    for n, entry in enumerate(data.get("products") or [], 1):
        if not isinstance(entry, dict) or not {"pattern", "product"} <= set(entry):
            raise ProductTableError(f"{path}: products entry {n} needs pattern and product")
        try:
            products.append((re.compile(str(entry["pattern"])), str(entry["product"])))
        except re.error as exc:
            raise ProductTableError(f"{path}: products entry {n}: bad regex "
                                    f"{entry['pattern']!r}: {exc}") from None
    return vendors, products


@cache
def _table(site_file: Path | None = None, _stamp: float | None = None) -> Table:
    vendors, products = _entries(PRODUCTS_FILE)
    if site_file is not None:
        site_vendors, site_products = _entries(site_file)
        vendors, products = site_vendors + vendors, site_products + products
    return vendors, products


def table() -> Table:
    """The bundled table, with the site's entries first when ``vendor_dir`` has the file."""
    from otaudit.settings import get_settings

    site_dir = get_settings().vendor_dir
    site_file = Path(site_dir) / SITE_FILE_NAME if site_dir is not None else None
    if site_file is None or not site_file.is_file():
        return _table()
    return _table(site_file, site_file.stat().st_mtime)


def vendor_of(order_code: str, products: Table | None = None) -> str | None:
    vendors = (products or table())[0]
    return next((v for prefix, v in vendors if order_code.startswith(prefix)), None)


def product_of(order_code: str, products: Table | None = None) -> str | None:
    return next((name for pattern, name in (products or table())[1]
                 if pattern.match(order_code)), None)
