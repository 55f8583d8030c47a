"""RetailRocket: `events.csv` (`timestamp,visitorid,event,itemid,transactionid`, times in milliseconds) and,
when they sit beside it, `item_properties_part*.csv` and `category_tree.csv`.

Events map to types: view → view, addtocart → cart, transaction → purchase (the transaction id is not kept).
An item's category is its latest `categoryid` property; its parent category becomes the item attribute
`parent_category`. Visitors have no attributes.
"""

from __future__ import annotations

from pathlib import Path

from core.ingest.presets.common import IngestOptions, events_select, find_file, raw_fields, sibling
from core.ingest.readers import Dialect, header_names, require_columns
from core.ingest.stage import Run, SideTable, Stage
from core.ingest.times import time_sql

__all__ = ["load_retailrocket", "EVENTS"]

EVENTS = {"view": "view", "addtocart": "cart", "transaction": "purchase"}
_CSV = Dialect(delim=",", header=True)


def load_retailrocket(run: Run, source: Path, options: IngestOptions) -> Stage:
    """The RetailRocket folder, or its events.csv."""
    path = find_file(source, ["events.csv"], "RetailRocket's events.csv")
    names = header_names(path, _CSV)
    cols = require_columns(
        names, {"time": "timestamp", "user": "visitorid", "event": "event", "item": "itemid"}, path.name
    )
    src, params = run.delimited(path, len(names), _CSV, f"{len(names)} comma-separated fields: {','.join(names)}")
    event = f"lower(c{cols['event']})"
    sql = events_select(
        src,
        user=f"c{cols['user']}",
        item=f"c{cols['item']}",
        time=time_sql(f"c{cols['time']}", "ms"),
        event_type=f"coalesce((?::MAP(VARCHAR, VARCHAR))[{event}], {event})",
        problem=f"CASE WHEN {event} <> '' AND (?::MAP(VARCHAR, VARCHAR))[{event}] IS NULL THEN 'unknown event \"' || {event} "
        f"|| '\" (expected view, addtocart or transaction)' END",
        raw=raw_fields(len(names)),
    )
    run.assume("RetailRocket timestamps are unix milliseconds.")
    items = _items(run, path)
    return Stage(sql, [EVENTS, EVENTS, *params], items=items, raw_parts=len(names))


def _items(run: Run, events: Path) -> SideTable | None:
    parts = sorted(p for p in events.parent.glob("item_properties_part*.csv") if p.is_file())
    if not parts:
        run.assume("No item_properties_part*.csv beside events.csv: items have no categories.")
        return None
    selects, params = [], []
    for part in parts:
        names = header_names(part, _CSV)
        c = require_columns(
            names, {"time": "timestamp", "item": "itemid", "property": "property", "value": "value"}, part.name
        )
        src, p = run.delimited(part, len(names), _CSV, f"{len(names)} comma-separated fields", events=False)
        selects.append(
            f"""SELECT trim(c{c['item']}) AS item_id, trim(c{c['value']}) AS category,
                       TRY_CAST(c{c['time']} AS BIGINT) AS t FROM {src} WHERE trim(c{c['property']}) = 'categoryid'"""
        )
        params += p
    latest = f"""SELECT item_id, arg_max(category, t) AS category FROM ({' UNION ALL '.join(selects)})
                 WHERE item_id IS NOT NULL GROUP BY item_id"""
    parent = "NULL::VARCHAR"
    tree_join = ""
    tree = sibling(events, ["category_tree.csv"])
    if tree is not None:
        names = header_names(tree, _CSV)
        c = require_columns(names, {"category": "categoryid", "parent": "parentid"}, tree.name)
        src, p = run.delimited(tree, len(names), _CSV, f"{len(names)} comma-separated fields", events=False)
        tree_join = f"""LEFT JOIN (SELECT trim(c{c['category']}) AS category, any_value(trim(c{c['parent']})) AS parent
                                   FROM {src} GROUP BY 1) t USING (category)"""
        parent = "t.parent"
        params += p
    sql = f"""SELECT row_number() OVER (ORDER BY item_id) - 1 AS seq, item_id, NULL::VARCHAR AS title,
                CASE WHEN category <> '' THEN [category] ELSE []::VARCHAR[] END AS categories,
                map_from_entries(list_filter([struct_pack(k := 'parent_category', v := {parent})],
                                 lambda e: e.v IS NOT NULL AND e.v <> '')) AS attributes,
                item_id AS raw
            FROM ({latest}) l {tree_join}"""
    return SideTable(sql, params, label="item_properties")
