"""Outgoing events, read side: the partitions' streams as one globally ordered feed.

Scripts append every position change to its partition's stream (`keys.events(p)`) with an
auto id `<ms>-<seq>` of the store's clock. The public event id is `<ms>-<seq>-<ppp>`; sorting
by (ms, seq, partition) is the global order, and any id is a cursor into it.

Reading rule (no gap, no duplicate across 256 streams): take the store's TIME t0 first, then
read the streams; deliver only entries with ms < t0. The store runs one command at a time and
stamps an XADD with its clock, so every entry with ms < t0 was written before TIME ran and is
in the read. Entries at or after t0 wait for a later round. On a cluster each primary stamps
with its own clock: a round reads every primary (its TIME first, in the same pipeline) and t0
is the smallest of their TIMEs, less a margin for clock skew across a failover (`source`).

- `ids`: event ids and cursors, stream-id arithmetic.
- `model`: stream entry -> public event JSON (and its SSE frame).
- `filters`: sku / location / channel filters.
- `source`: every Redis command of the read side; one server or a cluster (per-node rounds).
- `log`: one page of the merged feed after a cursor (GET /v1/events/log, SSE catch-up).
- `hub`: one reader per process, fanned out to SSE subscribers through bounded queues.
- `sse`: one client's stream: catch up from the log, then follow the hub.
"""
