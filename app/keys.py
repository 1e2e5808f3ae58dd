"""The key schema, in one place.

Every key carries a hash tag `{NNN}`: the partition of the sku it belongs to, NNN =
crc32(sku) mod PARTITIONS. A sku's positions, its hold-line index, the holds (or hold parts)
on it, the partition's outgoing event stream and the operation markers of requests on it all
share that tag, so every script touches one hash slot and the schema works unchanged on a
Redis/Valkey cluster. See docs/architecture.md for why the partition, not the sku or the
location, is the tag.

Incoming event identity claims have their own slot, outside any partition (tagged by the
identity). Idempotency-Key records live in the slot of the change they guard.

Global configuration (locations, channels) lives under the `{cfg}` tag; scripts never read it,
the service passes what they need as ARGV from its cached copy.
"""

from __future__ import annotations

import zlib

PARTITIONS = 256  # fixed once data exists: changing it re-homes every key
PREFIX = "os"


def partition_of(sku: str) -> int:
    return zlib.crc32(sku.encode()) % PARTITIONS


def _tag(partition: int) -> str:
    return f"{PREFIX}:{{{partition:03d}}}"


# Every key of a hold names its partition's tag, eight for a one-line hold: made once each
# rather than formatted per key (docs/benchmarks.md, "Session 7, the hold's Python").
_TAGS = tuple(_tag(p) for p in range(PARTITIONS))


def tag(partition: int) -> str:
    return _TAGS[partition] if 0 <= partition < PARTITIONS else _tag(partition)


def position(partition: int, sku: str) -> str:
    """Hash: field = location, value = "on_hand:held:committed:safety_stock"."""
    return f"{tag(partition)}:pos:{sku}"


def hold_line_index(partition: int, sku: str) -> str:
    """Sorted set of the open hold lines on a sku (active, pending and committed), member
    "<order>|<hold>|<location>|<qty>" (order: when the line was made, 16 digits, ms * 1000 +
    the event's sequence; the record's `orders` keeps it), score: when the line stops counting
    (count_until ms), +inf for a committed line. Lapsed lines are a score range (-inf, now];
    a shortfall names holds newest first by the members' order (lua/includes/position.lua)."""
    return f"{tag(partition)}:hx:{sku}"


def hold_open_by_sku_before_one_index(partition: int, sku: str) -> str:
    """Sorted set of a store written before the one line index: its open lines by creation
    order (member "hold|location|qty"). Neither read nor written by the scripts any more:
    `omnistock audit` reports it (index_legacy) and `--fix` rebuilds `hold_line_index` from the
    hold records and deletes it (docs/operations.md "Upgrading a store from before the one line
    index")."""
    return f"{tag(partition)}:ho:{sku}"


def sku_keys(partition: int, sku: str) -> list[str]:
    """The key pair every hold and stock script takes per sku."""
    return [position(partition, sku), hold_line_index(partition, sku)]


def supply(partition: int, sku: str) -> str:
    """Hash: the sku's supply lines (stock on its way), field "<location>|<supply id>", value
    JSON {t: type, q: open units, e: eta ms, r: reference, c: created ms, u: updated ms}
    (lua/includes/promise.lua)."""
    return f"{tag(partition)}:sup:{sku}"


def promises(partition: int, sku: str) -> str:
    """Hash: units promised to holds from the sku's supply lines, field
    "<hold id>|<location>|<supply id>", value "qty|count_until ms (-1: committed)|order (when made:
    ms x 1000 + n)|needed_by ms (0: none)" (lua/includes/promise.lua)."""
    return f"{tag(partition)}:px:{sku}"


def event_seen(partition: int, location: str, event_id: str) -> str:
    """String: the incoming stock event (location, id) applied in this partition, value its
    fingerprint (app/domain/stock_events.py), written with the change; kept for a retention.
    `|` is not an identifier character, so location and id cannot run into each other."""
    return f"{tag(partition)}:seen:{location}|{event_id}"


def event_seen_before_locations(partition: int, event_id: str) -> str:
    """String: an event id applied before identities were per location (any location, any
    content). Only read, so a batch sent before an upgrade and replayed after it stays
    `duplicate`; none is left once the retention has passed since the upgrade."""
    return f"{tag(partition)}:seen:{event_id}"


def event_seen_keys(partition: int, location: str, event_id: str) -> list[str]:
    """The key pair `stock_events.lua` takes per event."""
    return [
        event_seen(partition, location, event_id),
        event_seen_before_locations(partition, event_id),
    ]


def event_claim(location: str, event_id: str) -> str:
    """String: the content (fingerprint) an incoming event identity (location, id) was first
    sent with, whatever the sku; its slot is the identity's own, so a reused id is caught
    across partitions. Written before the change, kept as long as the seen records."""
    return f"{PREFIX}:{{ev:{location}|{event_id}}}"


def hold(partition: int, hold_id: str) -> str:
    """Hash: one hold (or the part of a multi-partition hold that lives in this partition)."""
    return f"{tag(partition)}:hold:{hold_id}"


def holds_index(partition: int) -> str:
    """Sorted set, every score 0, ordered by member: one member per hold part created in this
    partition, "<owner> <created_at ms, 13 digits> <hold id>" (a space sorts before every
    identifier character, so one owner's holds are one lex range, oldest first). Written by
    hold_reserve.lua with the part; GET /v1/holds reads it (app/domain/hold_list.py), and the
    listing drops members whose record has gone (hold_list.lua)."""
    return f"{tag(partition)}:hl"


def expiry_index(partition: int) -> str:
    """Sorted set of holds that can expire in this partition: member hold id, score ms."""
    return f"{tag(partition)}:expiry"


def skus(partition: int) -> str:
    """Set of skus with at least one position in this partition (for export and audit)."""
    return f"{tag(partition)}:skus"


def events(partition: int) -> str:
    """Stream of outgoing stock events of this partition."""
    return f"{tag(partition)}:events"


def op_marker(partition: int, digest: str) -> str:
    """String: written by a mutating script together with its change, so a retried request
    whose first attempt succeeded is recognised here even if the service crashed before
    recording the response."""
    return f"{tag(partition)}:op:{digest}"


def replication_mark(partition: int | None) -> str:
    """String: written after each batch of changes a service waits for replicas to hold
    (app/store/durable.py), so the WAIT covers them even when a replayed retry wrote
    nothing; one per partition (and one for the configuration), in the changes' own slot."""
    return f"{tag(partition) if partition is not None else CONFIG_TAG}:replicated"


def idempotency(slot: str, digest: str) -> str:
    """Hash: an Idempotency-Key claim and stored response, in the slot of the change it
    guards: `slot` is `tag(partition)` (a hold's home partition, a position's partition) or
    CONFIG_TAG. Written by that change's own script (lua/includes/idempotency.lua), so a
    failover keeps or loses the record together with the change."""
    return f"{slot}:idem:{digest}"


CONFIG_TAG = f"{PREFIX}:{{cfg}}"
LOCATIONS = f"{CONFIG_TAG}:locations"  # hash: location id -> JSON
CHANNELS = f"{CONFIG_TAG}:channels"  # hash: channel id -> JSON
CONFIG_VERSION = f"{CONFIG_TAG}:version"  # counter bumped on every config change
# geo set (GEOADD): member location id, for every location with coordinates; written by
# config_put.lua with the location's record, so it never disagrees with the records.
GEO = f"{CONFIG_TAG}:geo"
KITS = f"{CONFIG_TAG}:kits"  # hash: kit sku -> JSON {"components": [{"sku", "quantity"}]}
# string: 256 random bits (hex) keying the ids of holds made with an Idempotency-Key
# (app/domain/hold_ids.py); created once with SET NX, the same for every process and host.
HOLD_ID_SECRET = f"{CONFIG_TAG}:hold_id_secret"

# Webhook subscriptions (app/webhooks/): all under one tag of their own, so the deliverer's
# fenced writes (lease + subscription in one script) stay single-slot on a cluster.
WEBHOOK_TAG = f"{PREFIX}:{{wh}}"
WEBHOOKS = f"{WEBHOOK_TAG}:subs"  # set of subscription ids
# string: the deliverer's lease, a random token per holder (SET NX PX, renewed by its holder)
WEBHOOK_LEASE = f"{WEBHOOK_TAG}:lease"


def webhook(sub_id: str) -> str:
    """Hash: one subscription's settings (url, secret, filters as JSON), `enabled`, `epoch`
    (bumped by every admin write, fencing the deliverer's writes) and `cursor` (the last
    event id acknowledged by the receiver)."""
    return f"{WEBHOOK_TAG}:sub:{sub_id}"


def webhook_log(sub_id: str) -> str:
    """List: the subscription's recent delivery attempts, newest first (JSON each)."""
    return f"{WEBHOOK_TAG}:log:{sub_id}"
