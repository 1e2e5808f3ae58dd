"""Every store command of the webhooks, so the rest never builds a Redis call.

All keys share the `{wh}` tag (app/keys.py). Admin writes bump the subscription's `epoch`;
the deliverer's writes (cursor, disable) go through lua/webhook_fenced_set.lua, which applies
them only while the writer still holds the lease and the subscription is at the epoch it
read: a deliverer that lost its lease, or that delivers a subscription an admin has since
changed, writes nothing (at-least-once: whatever it delivered is delivered again by the next
one). The lease is renewed and released by lua/webhook_lease_renew.lua / _release.lua; each
script is called as a function, like the service's (app/store/scripts.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any, cast

import orjson
from redis.asyncio import Redis

from app import keys
from app.domain.clock import iso
from app.domain.errors import WebhookNotFound
from app.events.ids import EventId, predecessor
from app.store.calls import Script
from app.store.scripts import TimedScript, expanded, script_source
from app.webhooks.model import Subscription, SubscriptionIn, SubscriptionPatch, new_secret

_LIST_FIELDS = ("event_types", "skus", "locations", "channels")


def _function(redis: Redis, script: Script) -> TimedScript:
    """`script` (lua/) called as a function on `redis`, loaded where missing, as the
    service's own (app/store/scripts.py)."""
    return TimedScript(redis, script_source(script), lambda _: None, expanded(script))


class Record:
    """A stored subscription: what the API shows, plus the secret and the epoch."""

    def __init__(self, sub_id: str, fields: dict[str, str]) -> None:
        data: dict[str, Any] = {k: v for k, v in fields.items() if k not in _LIST_FIELDS}
        for name in _LIST_FIELDS:
            raw = fields.get(name)
            data[name] = orjson.loads(raw) if raw else None
        data["enabled"] = fields.get("enabled") == "1"
        data["disabled_reason"] = fields.get("disabled_reason") or None
        self.sub = Subscription(id=sub_id, **data)
        self.secret = fields["secret"]
        self.epoch = fields.get("epoch", "0")


def _encode(patch: SubscriptionPatch) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in patch.model_dump(exclude_unset=True).items():
        if name in _LIST_FIELDS:
            out[name] = orjson.dumps(value).decode() if value is not None else ""
        elif name == "enabled":
            out[name] = "1" if value else "0"
            if value:
                out["disabled_reason"] = ""
        elif value is not None:
            out[name] = str(value)
    return out


class WebhookRegistry:
    def __init__(self, redis: Redis, now_ms: Callable[[], Awaitable[int]]) -> None:
        self._redis = redis
        self._now_ms = now_ms  # the event feed's clock: a new subscription starts from now
        self._fenced = _function(redis, Script.WEBHOOK_FENCED_SET)
        self._renew = _function(redis, Script.WEBHOOK_LEASE_RENEW)
        self._release = _function(redis, Script.WEBHOOK_LEASE_RELEASE)

    # -- the admin API ----------------------------------------------------------------------

    async def create(
        self, body: SubscriptionIn, sub_id: str | None = None
    ) -> tuple[Subscription, str]:
        """A new subscription (`sub_id`: the one a keyed request's retry writes again)."""
        sub_id = sub_id or "wh_" + secrets.token_hex(8)
        now = await self._now_ms()
        fields = _encode(body)
        fields.setdefault("secret", new_secret())
        fields.setdefault("enabled", "1")
        fields.update(created_at=iso(now), cursor=str(EventId.before(now)), epoch="1")
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.webhook(sub_id), mapping=cast(dict[Any, Any], fields))
            pipe.sadd(keys.WEBHOOKS, sub_id)
            await pipe.execute()
        record = await self.get(sub_id)
        return record.sub, record.secret

    async def get(self, sub_id: str) -> Record:
        fields = cast(dict[str, str], await self._redis.hgetall(keys.webhook(sub_id)))
        if "secret" not in fields:
            raise WebhookNotFound(f"no webhook subscription {sub_id!r}")
        return Record(sub_id, fields)

    async def all(self) -> list[Record]:
        ids = sorted(cast(set[str], await self._redis.smembers(keys.WEBHOOKS)))
        async with self._redis.pipeline(transaction=False) as pipe:
            for sub_id in ids:
                pipe.hgetall(keys.webhook(sub_id))
            replies = cast(list[dict[str, str]], await pipe.execute())
        return [Record(i, f) for i, f in zip(ids, replies, strict=True) if "secret" in f]

    async def count(self) -> int:
        return int(await self._redis.scard(keys.WEBHOOKS))

    async def update(self, sub_id: str, fields: dict[str, str]) -> Subscription:
        """Writes `fields` and bumps the epoch: the deliverer restarts the subscription."""
        await self.get(sub_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            if fields:
                pipe.hset(keys.webhook(sub_id), mapping=cast(dict[Any, Any], fields))
            pipe.hincrby(keys.webhook(sub_id), "epoch", 1)
            await pipe.execute()
        return (await self.get(sub_id)).sub

    async def patch(self, sub_id: str, patch: SubscriptionPatch) -> Subscription:
        return await self.update(sub_id, _encode(patch))

    async def redeliver(self, sub_id: str, start: EventId) -> Subscription:
        """Deliver again from the event `start` on (the cursor moves to just before it)."""
        if start.partition > 0:
            cursor = EventId(start.ms, start.seq, start.partition - 1)
        else:
            cursor = EventId(*predecessor(start.ms, start.seq), keys.PARTITIONS - 1)
        return await self.update(sub_id, {"cursor": str(cursor)})

    async def delete(self, sub_id: str) -> None:
        await self.get(sub_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.webhook(sub_id), keys.webhook_log(sub_id))
            pipe.srem(keys.WEBHOOKS, sub_id)
            await pipe.execute()

    async def attempts(self, sub_id: str, limit: int) -> list[dict[str, Any]]:
        await self.get(sub_id)
        raw = cast(list[str], await self._redis.lrange(keys.webhook_log(sub_id), 0, limit - 1))
        return [orjson.loads(r) for r in raw]

    # -- the deliverer ------------------------------------------------------------------------

    async def fenced_set(
        self, token: str, record: Record, attempts: list[dict[str, Any]], keep: int, **fields: str
    ) -> int:
        """Write `fields` and log `attempts` (oldest first), fenced: see
        lua/webhook_fenced_set.lua."""
        args: list[str | bytes | int] = [token, record.epoch, keep, len(attempts)]
        args += [orjson.dumps(a) for a in attempts]
        for name, value in fields.items():
            args += [name, value]
        sub_id = record.sub.id
        keys_ = [keys.WEBHOOK_LEASE, keys.webhook(sub_id), keys.webhook_log(sub_id)]
        return int(await self._fenced(keys=keys_, args=args))

    async def log_attempts(self, sub_id: str, attempts: list[dict[str, Any]], keep: int) -> None:
        """Log `attempts` (oldest first) unfenced: failures are worth seeing from anyone."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lpush(keys.webhook_log(sub_id), *(orjson.dumps(a) for a in attempts))
            pipe.ltrim(keys.webhook_log(sub_id), 0, keep - 1)
            await pipe.execute()

    async def acquire(self, token: str, ms: int) -> bool:
        return bool(await self._redis.set(keys.WEBHOOK_LEASE, token, nx=True, px=ms))

    async def renew(self, token: str, ms: int) -> bool:
        return bool(await self._renew(keys=[keys.WEBHOOK_LEASE], args=[token, ms]))

    async def release(self, token: str) -> None:
        await self._release(keys=[keys.WEBHOOK_LEASE], args=[token])
