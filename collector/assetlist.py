"""Asset lists in and out: an inventory from a CSV or XLSX export, and an inventory as CSV.

Plants keep their asset register in spreadsheets (CMDB exports, engineering lists). A
mapping file says which column holds which inventory field::

    site: plant-a
    columns:                      # inventory field: column header (or {column, values})
      id: Asset tag
      name: Description
      kind: {column: Type, values: {PLC: plc, Switch: switch, HMI: hmi}}
      zone: Zone
      vendor: Manufacturer
      model: Model
      host: IP address
      protocol: Protocol          # modbus, s7, snmp, ssh, ...
      port: Port                  # optional
    defaults: {protocol: modbus}  # for empty cells and missing columns
    endpoint_options:             # fixed options per protocol (credential references only)
      snmp: {version: v2c, community: {env: SNMP_COMMUNITY}}
    zones: {cell-1: 3}            # SL-T per zone id (others: sl_t_default)
    sl_t_default: 2

Rows with the same ``id`` are one asset with several endpoints. Every problem names the
row (as the spreadsheet numbers it, header = row 1) and the column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from otaudit.errors import InputError, pydantic_problems
from otaudit.inventory import Inventory

FIELDS = ("id", "name", "kind", "zone", "vendor", "model", "host", "protocol", "port", "tags")
REQUIRED = ("id", "kind", "zone", "host", "protocol")
EXPORT_COLUMNS = ("id", "name", "kind", "zone", "vendor", "model", "protocol", "host", "port",
                  "schedule", "tags")
MAX_ROWS = 100_000


class Column(BaseModel):
    model_config = ConfigDict(extra="forbid")

    column: str
    values: dict[str, str] | None = None  # cell text -> inventory value (others: refused)


class Mapping_(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: str
    collector: str | None = None
    columns: dict[str, str | Column]
    defaults: dict[str, str] = Field(default_factory=dict)
    endpoint_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    zones: dict[str, int] = Field(default_factory=dict)
    sl_t_default: int = Field(2, ge=1, le=4)
    sheet: str | None = None  # XLSX: the sheet to read (default: the first)


@dataclass(frozen=True)
class Cell:
    row: int
    column: str
    value: str


def load_mapping(path: Path) -> Mapping_:
    from otaudit.yamlio import YamlError, load_yaml

    try:
        doc = load_yaml(path)
        mapping = Mapping_.model_validate(doc.data)
    except (YamlError, OSError) as exc:
        raise InputError(path, [str(exc)]) from None
    except ValidationError as exc:
        raise InputError(path, pydantic_problems(exc, doc.locate)) from None
    unknown = sorted(set(mapping.columns) - set(FIELDS))
    missing = [f for f in REQUIRED if f not in mapping.columns and f not in mapping.defaults]
    problems = [f"columns.{f}: not an inventory field (known: {', '.join(FIELDS)})"
                for f in unknown]
    problems += [f"columns: {f!r} needs a column or a default" for f in missing]
    if problems:
        raise InputError(path, problems)
    return mapping


def read_rows(path: Path, sheet: str | None = None) -> tuple[list[str], Iterator[list[str]]]:
    """Header and rows (cells as text) of a CSV (UTF-8, ``,`` or ``;``) or XLSX file."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return _xlsx_rows(path, sheet)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, [f"cannot read as UTF-8 CSV: {exc}"]) from None
    dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t") if text.strip() else csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header = next(reader, [])
    return [h.strip() for h in header], reader


def _xlsx_rows(path: Path, sheet: str | None) -> tuple[list[str], Iterator[list[str]]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise InputError(path, [f"cannot read as XLSX: {type(exc).__name__}: {exc}"]) from None
    if sheet is not None and sheet not in book.sheetnames:
        raise InputError(path, [f"no sheet {sheet!r}; sheets: {', '.join(book.sheetnames)}"])
    rows = (book[sheet] if sheet else book.worksheets[0]).iter_rows(values_only=True)
    text = ([_cell_text(c) for c in row] for row in rows)
    header = next(text, [])
    return [h.strip() for h in header], text


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a port typed as a number
    return str(value).strip()


def import_asset_list(path: Path, mapping: Mapping_) -> dict[str, Any]:
    """The inventory (YAML-ready data) of an asset list; InputError lists every problem."""
    header, rows = read_rows(path, mapping.sheet)
    positions: dict[str, tuple[int, Column]] = {}
    problems: list[str] = []
    for field, spec in mapping.columns.items():
        column = spec if isinstance(spec, Column) else Column(column=spec)
        if column.column not in header:
            problems.append(f"column {column.column!r} (for {field}) is not in the header "
                            f"(row 1: {', '.join(h for h in header if h) or 'empty'})")
            continue
        positions[field] = (header.index(column.column), column)
    if problems:
        raise InputError(path, problems)
    assets: dict[str, dict[str, Any]] = {}
    zones: dict[str, dict[str, Any]] = {}
    for number, row in enumerate(rows, start=2):
        if number > MAX_ROWS:
            problems.append(f"more than {MAX_ROWS} rows; split the list")
            break
        if not any(cell.strip() for cell in row):
            continue
        values = _row_values(row, number, positions, mapping, problems)
        if values is None:
            continue
        asset = assets.get(values["id"])
        if asset is None:
            asset = {k: values[k] for k in ("id", "name", "kind", "zone", "vendor", "model")
                     if values.get(k)}
            asset["endpoints"] = {}
            if values.get("tags"):
                asset["tags"] = [t.strip() for t in values["tags"].split(",") if t.strip()]
            assets[values["id"]] = asset
            zones.setdefault(values["zone"], {
                "id": values["zone"], "sl_t": mapping.zones.get(values["zone"],
                                                                mapping.sl_t_default)})
        protocol = values["protocol"]
        if protocol in asset["endpoints"]:
            problems.append(f"row {number}: asset {values['id']!r} has a second "
                            f"{protocol} endpoint")
            continue
        endpoint: dict[str, Any] = {"host": values["host"],
                                    **mapping.endpoint_options.get(protocol, {})}
        if values.get("port"):
            endpoint["port"] = _port(values["port"], number, positions, problems)
        asset["endpoints"][protocol] = endpoint
    data = {"site": mapping.site, **({"collector": mapping.collector} if mapping.collector
                                      else {}),
            "zones": list(zones.values()), "assets": list(assets.values())}
    if not problems:
        try:
            Inventory.model_validate(data)
        except ValidationError as exc:
            problems += [_row_of(p, assets) for p in pydantic_problems(exc)]
    if problems:
        raise InputError(path, problems)
    return data


def _row_values(row: list[str], number: int, positions: Mapping[str, tuple[int, Column]],
                mapping: Mapping_, problems: list[str]) -> dict[str, str] | None:
    values: dict[str, str] = {}
    refused: set[str] = set()
    for field in FIELDS:
        value = mapping.defaults.get(field, "")
        if field in positions:
            index, column = positions[field]
            cell = row[index].strip() if index < len(row) else ""
            if cell and column.values is not None:
                if cell not in column.values:
                    problems.append(f"row {number}, column {column.column!r}: {cell!r} is "
                                    f"not one of {', '.join(column.values)}")
                    refused.add(field)
                    continue
                cell = column.values[cell]
            value = cell or value
        values[field] = value
    empty = [f for f in REQUIRED if f not in refused and not values.get(f)]
    for field in empty:
        where = (f"column {positions[field][1].column!r}" if field in positions
                 else f"default {field}")
        problems.append(f"row {number}, {where}: empty ({field} is required)")
    return None if refused or empty else values


def _port(text: str, number: int, positions: Mapping[str, tuple[int, Column]],
          problems: list[str]) -> int | str:
    try:
        port = int(text)
        if 1 <= port <= 65535:
            return port
    except ValueError:
        pass
    problems.append(f"row {number}, column {positions['port'][1].column!r}: {text!r} is not "
                    "a port (1-65535)")
    return text


def _row_of(problem: str, assets: dict[str, dict[str, Any]]) -> str:
    """'assets.3.kind: …' → name the asset id, which names its first row."""
    parts = problem.split(".", 2)
    if len(parts) == 3 and parts[0] == "assets" and parts[1].isdigit():
        asset_id = list(assets)[int(parts[1])]
        return f"asset {asset_id!r}: {parts[2]}"
    return problem


def export_csv(inventory: Inventory) -> str:
    """One row per endpoint (the import's default mapping reads it back)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for asset in inventory.assets:
        for protocol, endpoint in asset.endpoints.items():
            writer.writerow([asset.id, asset.name or "", asset.kind.value, asset.zone,
                             asset.vendor or "", asset.model or "", protocol, endpoint.host,
                             endpoint.port or "", inventory.schedule_of(asset),
                             ",".join(asset.tags)])
    return out.getvalue()
