"""Vendor and product family from a Siemens order number (the mapping is data: products.yaml)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import yaml

PRODUCTS_FILE = Path(__file__).with_name("products.yaml")


@cache
def _table() -> tuple[list[tuple[str, str]], list[tuple[re.Pattern[str], str]]]:
    data = yaml.safe_load(PRODUCTS_FILE.read_text(encoding="utf-8"))
    vendors = [(v["prefix"], v["vendor"]) for v in data["vendors"]]
    products = [(re.compile(p["pattern"]), p["product"]) for p in data["products"]]
    return vendors, products


def vendor_of(order_code: str) -> str | None:
    return next((v for prefix, v in _table()[0] if order_code.startswith(prefix)), None)


def product_of(order_code: str) -> str | None:
    return next((name for pattern, name in _table()[1] if pattern.match(order_code)), None)
